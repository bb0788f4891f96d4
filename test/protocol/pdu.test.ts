import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { dataLength, decodePdu, encodePdu, INDEX_TYPES, PDU_DATA_MAX, PDU_SIZE } from '../../src/protocol/pdu.js';
import { PeerdexError } from '../../src/protocol/errors.js';

/** A 100-byte buffer from a type letter and raw data bytes, NUL padded. */
const pduOf = (type: string, data: Uint8Array | string): Buffer => {
  const out = Buffer.alloc(PDU_SIZE);
  out[0] = type.charCodeAt(0);
  Buffer.from(data as string).copy(out, 1, 0, PDU_DATA_MAX);
  return out;
};

const expectPeerdexError = (fn: () => unknown, code: string) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PeerdexError);
    expect((err as PeerdexError).code).toBe(code);
    return err as PeerdexError;
  }
  throw new Error('expected a PeerdexError');
};

describe('encodePdu', () => {
  it('writes the type letter, the fields joined by ";" and NUL padding to 100 bytes', () => {
    const buf = encodePdu('R', ['9100', '', 'a.txt']);
    const expected = Buffer.alloc(100);
    expected.write('R9100;;a.txt', 'latin1');
    expect(buf.length).toBe(PDU_SIZE);
    expect(buf.equals(expected)).toBe(true);
  });

  it('encodes empty data as the letter and 99 NULs', () => {
    for (const fields of [[], ['']]) {
      const buf = encodePdu('O', fields);
      expect(buf[0]).toBe(0x4f);
      expect(buf.subarray(1).every((b) => b === 0)).toBe(true);
    }
  });

  it('writes data of exactly 99 bytes with no NUL at all', () => {
    const text = 'x'.repeat(PDU_DATA_MAX);
    const buf = encodePdu('S', [text]);
    expect(buf.toString('latin1')).toBe('S' + text);
    expect(buf.indexOf(0)).toBe(-1);
  });

  it('refuses 100 data bytes unless truncating, and never splits a UTF-8 character', () => {
    expectPeerdexError(() => encodePdu('S', ['x'.repeat(100)]), 'ERR_INVALID_FIELD');
    const cut = encodePdu('E', ['x'.repeat(98) + 'é'], undefined, true);
    // 'é' is 2 bytes; only one byte is left, so it is dropped whole and a NUL ends the data.
    expect(cut.subarray(1, 99).toString('latin1')).toBe('x'.repeat(98));
    expect(cut[99]).toBe(0);
    expect(decodePdu(cut).fields).toEqual(['x'.repeat(98)]);
  });

  it('counts the data limit in UTF-8 bytes, not characters', () => {
    const euro = '€'.repeat(33); // 99 bytes
    expect(decodePdu(encodePdu('S', [euro])).fields).toEqual([euro]);
    expectPeerdexError(() => encodePdu('S', [euro + 'a']), 'ERR_INVALID_FIELD');
  });

  it('refuses fields containing ";" or NUL, and bad type letters', () => {
    expectPeerdexError(() => encodePdu('S', ['a;b']), 'ERR_INVALID_FIELD');
    expectPeerdexError(() => encodePdu('S', ['a\0b']), 'ERR_INVALID_FIELD');
    expectPeerdexError(() => encodePdu('', ['a']), 'ERR_INVALID_FIELD');
    expectPeerdexError(() => encodePdu('RS', ['a']), 'ERR_INVALID_FIELD');
    expectPeerdexError(() => encodePdu('é', ['a']), 'ERR_INVALID_FIELD');
  });

  it('overwrites every byte of a reused output buffer', () => {
    const out = Buffer.alloc(PDU_SIZE, 0xff);
    encodePdu('A', ['a.txt'], out);
    const expected = Buffer.alloc(100);
    expected.write('Aa.txt', 'latin1');
    expect(out.equals(expected)).toBe(true);
    // A shorter PDU written over a longer one leaves no trace of it.
    encodePdu('S', ['x'.repeat(99)], out);
    encodePdu('A', ['b'], out);
    expect(decodePdu(out)).toEqual({ type: 'A', fields: ['b'] });
  });
});

describe('dataLength', () => {
  it('stops at the first NUL after the type byte, or at 99', () => {
    expect(dataLength(pduOf('A', 'abc'))).toBe(3);
    expect(dataLength(pduOf('A', ''))).toBe(0);
    expect(dataLength(pduOf('A', 'x'.repeat(99)))).toBe(99);
    // A NUL type byte is not the end of the data.
    const zeroType = pduOf('A', 'abc');
    zeroType[0] = 0;
    expect(dataLength(zeroType)).toBe(3);
  });
});

describe('decodePdu', () => {
  it('splits the data on ";" and ignores everything after the first NUL', () => {
    const buf = pduOf('R', '9100;;a.txt');
    buf.write('garbage;after;nul', 20, 'latin1');
    expect(decodePdu(buf)).toEqual({ type: 'R', fields: ['9100', '', 'a.txt'] });
  });

  it('gives [""] for empty data and keeps empty fields', () => {
    expect(decodePdu(pduOf('O', ''))).toEqual({ type: 'O', fields: [''] });
    expect(decodePdu(pduOf('R', ';;')).fields).toEqual(['', '', '']);
  });

  it('reads data that fills all 99 bytes', () => {
    const text = 'a;' + 'b'.repeat(97);
    expect(decodePdu(pduOf('S', text)).fields).toEqual(['a', 'b'.repeat(97)]);
  });

  it('refuses buffers that are not exactly 100 bytes', () => {
    for (const size of [0, 1, 99, 101, 200, 65507]) {
      expectPeerdexError(() => decodePdu(Buffer.alloc(size, 0x41)), 'ERR_MALFORMED_PDU');
    }
  });

  it('refuses data that is not UTF-8 (stray continuation, overlong, surrogate, truncated)', () => {
    for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff], [0x61, 0xf0, 0x9f, 0x98]]) {
      expectPeerdexError(() => decodePdu(pduOf('S', Uint8Array.from(bad))), 'ERR_MALFORMED_PDU');
    }
  });

  it('accepts bad bytes after the first NUL', () => {
    const buf = pduOf('S', 'ok');
    buf[50] = 0xff;
    expect(decodePdu(buf).fields).toEqual(['ok']);
  });

  it('decodes multi-byte UTF-8 data', () => {
    expect(decodePdu(pduOf('S', 'naïve-😀.txt')).fields).toEqual(['naïve-😀.txt']);
  });

  it('accepts a plain Uint8Array view at an offset', () => {
    const backing = new Uint8Array(300);
    const view = backing.subarray(100, 200);
    view.set(pduOf('A', 'x.bin'));
    backing.fill(0xff, 0, 100); // invalid UTF-8 before the view must not leak in
    expect(decodePdu(view)).toEqual({ type: 'A', fields: ['x.bin'] });
  });

  it('round-trips any fields that fit', () => {
    const field = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => !s.includes(';') && !s.includes('\0'));
    fc.assert(
      fc.property(fc.constantFrom(...INDEX_TYPES, 'D', 'C'), fc.array(field, { minLength: 1, maxLength: 6 }), (type, fields) => {
        fc.pre(Buffer.byteLength(fields.join(';')) <= PDU_DATA_MAX);
        const buf = encodePdu(type, fields);
        expect(buf.length).toBe(PDU_SIZE);
        expect(decodePdu(buf)).toEqual({ type, fields });
      }),
    );
  });

  it('either decodes or throws PeerdexError for any buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), (bytes) => {
        try {
          const pdu = decodePdu(bytes);
          expect(bytes.length).toBe(PDU_SIZE);
          expect(pdu.fields.join(';')).not.toContain('\0');
        } catch (err) {
          expect(err).toBeInstanceOf(PeerdexError);
        }
      }),
    );
  });
});
