import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  decodeErrorFields,
  decodeIndexReply,
  decodeIndexRequest,
  encodeAck,
  encodeError,
  encodeHolder,
  encodeLeave,
  encodeList,
  encodeListCount,
  encodeListPacket,
  encodeListServer,
  encodeSearch,
  MAX_NAMES_PER_LIST_PACKET,
  packListNames,
  parseHolderFields,
  type Holder,
} from '../../src/protocol/index-messages.js';
import { PDU_DATA_MAX, PDU_SIZE } from '../../src/protocol/pdu.js';
import { PeerdexError } from '../../src/protocol/errors.js';
import { filenameProblem } from '../../src/protocol/fields.js';

const SHA = createHash('sha256').update('content').digest('base64url');
const SRC = '127.0.0.1';

/** The exact 100 bytes a PDU with this type letter and data text must be. */
const bytes = (type: string, data = ''): Buffer => {
  const out = Buffer.alloc(PDU_SIZE);
  out.write(type + data, 'utf8');
  return out;
};
/** A 100-byte datagram with raw data bytes (may be invalid UTF-8). */
const raw = (type: string, data: number[] | string = []): Buffer => {
  const out = Buffer.alloc(PDU_SIZE);
  out.write(type, 0, 'latin1');
  (typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data)).copy(out, 1, 0, 99);
  return out;
};

const validName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 25 }).filter((s) => filenameProblem(s) === undefined);

describe('reply encoders: exact bytes', () => {
  it('encodeAck is "A" + filename + NUL padding, 100 bytes', () => {
    const buf = encodeAck('a.txt');
    expect(buf.length).toBe(100);
    expect(buf.equals(bytes('A', 'a.txt'))).toBe(true);
    expect(buf.subarray(6).every((b) => b === 0)).toBe(true);
  });

  it('encodeError is "E" + code;description, with ";" and NUL replaced and long text cut', () => {
    expect(encodeError(3, 'not found').equals(bytes('E', '3;not found'))).toBe(true);
    expect(encodeError(4, 'a;b\0c').equals(bytes('E', '4;a,b,c'))).toBe(true);
    const long = encodeError(4, 'x'.repeat(200));
    expect(long.length).toBe(100);
    expect(long.toString('latin1')).toBe('E4;' + 'x'.repeat(97));
    // A multi-byte character that does not fit is dropped whole.
    const cut = encodeError(6, 'y'.repeat(96) + '€');
    expect(cut.equals(bytes('E', '6;' + 'y'.repeat(96)))).toBe(true);
    expect(decodeIndexReply(cut)).toEqual({ type: 'E', code: 6, description: 'y'.repeat(96) });
  });

  it('encodeHolder writes port;addr;filename[;sha256]', () => {
    const h: Holder = { port: 9100, addr: '10.0.0.7', filename: 'a.txt' };
    expect(encodeHolder('S', h).equals(bytes('S', '9100;10.0.0.7;a.txt'))).toBe(true);
    expect(encodeHolder('R', { ...h, sha256: SHA }).equals(bytes('R', `9100;10.0.0.7;a.txt;${SHA}`))).toBe(true);
    expect(encodeHolder('T', { ...h, addr: '' }).equals(bytes('T', '9100;;a.txt'))).toBe(true);
    // The longest holder there is still fits: 5 + 1 + 39 (IPv6) + 1 + 25 + 1 + 43 = 115 > 99 does not,
    // but dotted IPv4 does: 5 + 1 + 15 + 1 + 25 + 1 + 43 = 91.
    const longest = { port: 65535, addr: '255.255.255.255', filename: 'n'.repeat(25), sha256: SHA };
    expect(encodeHolder('S', longest).toString('utf8', 1, 92)).toBe(`65535;255.255.255.255;${'n'.repeat(25)};${SHA}`);
  });

  it('encodes requests and the O sequence parts', () => {
    expect(encodeSearch('a.txt').equals(bytes('S', 'a.txt'))).toBe(true);
    expect(encodeList().equals(bytes('O'))).toBe(true);
    expect(encodeLeave().equals(bytes('E', '1;leaving'))).toBe(true);
    expect(encodeLeave('bye').equals(bytes('E', '1;bye'))).toBe(true);
    expect(encodeListCount(0).equals(bytes('O', '0'))).toBe(true);
    expect(encodeListCount(12).equals(bytes('O', '12'))).toBe(true);
    expect(encodeListServer('127.0.0.1', 9100, 2).equals(bytes('O', '127.0.0.1;9100;2'))).toBe(true);
    expect(encodeListPacket(0, ['a', 'b.txt']).equals(bytes('O', '0;a;b.txt'))).toBe(true);
    expect(encodeListPacket(11, ['x']).equals(bytes('O', '11;x'))).toBe(true);
  });
});

describe('decodeIndexRequest', () => {
  it('decodes R with an empty addr as the source address', () => {
    expect(decodeIndexRequest(bytes('R', '9100;;a.txt'), SRC)).toEqual({ kind: 'register', port: 9100, addr: SRC, filename: 'a.txt', sha256: undefined });
  });

  it('decodes R and T with an addr and a sha256', () => {
    expect(decodeIndexRequest(bytes('R', `9100;10.0.0.7;a.txt;${SHA}`), SRC)).toEqual({
      kind: 'register',
      port: 9100,
      addr: '10.0.0.7',
      filename: 'a.txt',
      sha256: SHA,
    });
    expect(decodeIndexRequest(bytes('T', '1;::1;b'), SRC)).toEqual({ kind: 'deregister', port: 1, addr: '::1', filename: 'b', sha256: undefined });
    expect(decodeIndexRequest(bytes('T', `65535;;b;${SHA}`), SRC)).toMatchObject({ kind: 'deregister', port: 65535, addr: SRC, sha256: SHA });
  });

  it('treats ::ffff:a.b.c.d as a.b.c.d, in the addr field and in the source', () => {
    expect(decodeIndexRequest(bytes('R', '9100;::ffff:10.0.0.7;a'), SRC)).toMatchObject({ addr: '10.0.0.7' });
    expect(decodeIndexRequest(bytes('R', '9100;;a'), '::ffff:10.0.0.8')).toMatchObject({ addr: '10.0.0.8' });
  });

  it('keeps UTF-8 filenames byte for byte', () => {
    expect(decodeIndexRequest(bytes('S', 'Ça.txt'), SRC)).toEqual({ kind: 'search', filename: 'Ça.txt' });
    expect(decodeIndexRequest(bytes('S', 'ça.txt'), SRC)).toEqual({ kind: 'search', filename: 'ça.txt' });
    // NFC and NFD forms are different names.
    expect(decodeIndexRequest(bytes('S', 'e\u0301'), SRC)).toEqual({ kind: 'search', filename: 'e\u0301' });
  });

  it('refuses R and T with missing, extra or bad fields as malformed', () => {
    const bad = [
      '',
      '9100',
      '9100;',
      '9100;;',
      '9100;a.txt',
      `9100;;a.txt;${SHA};x`,
      '9100;;a.txt;',
      '9100;;a.txt;short',
      `9100;;a.txt;${SHA}=`,
      '0;;a.txt',
      '65536;;a.txt',
      '91a0;;a.txt',
      ';;a.txt',
      '-1;;a.txt',
      '9100;localhost;a.txt',
      '9100;1.2.3;a.txt',
      '9100;1.2.3.4:80;a.txt',
      '9100;;',
      '9100;;.',
      '9100;;..',
      '9100;;a/b',
      '9100;;a\\b',
      '9100;;a\tb',
      '9100;;a\u007fb',
      '9100;;a\u0085b',
      `9100;;${'x'.repeat(26)}`,
      `9100;;${'é'.repeat(13)}`,
    ];
    for (const type of ['R', 'T']) {
      for (const data of bad) {
        const req = decodeIndexRequest(bytes(type, data), SRC);
        expect(req?.kind, `${type} ${JSON.stringify(data)}`).toBe('malformed');
        expect((req as { reason: string }).reason.length).toBeGreaterThan(0);
      }
    }
  });

  it('accepts the 25-byte limit exactly', () => {
    expect(decodeIndexRequest(bytes('R', `9100;;${'é'.repeat(12)}x`), SRC)).toMatchObject({ kind: 'register', filename: 'é'.repeat(12) + 'x' });
  });

  it('refuses an R whose S reply would not fit 99 bytes once the empty addr is filled in', () => {
    const longV6 = '2001:db8:1234:5678:9abc:def0:1234:5678'; // 38 characters
    const name = 'n'.repeat(25);
    // 5 + 1 + 38 + 1 + 25 + 1 + 43 = 114 bytes: the R fits, its S reply would not.
    const req = decodeIndexRequest(bytes('R', `65535;;${name};${SHA}`), longV6);
    expect(req?.kind).toBe('malformed');
    // Without the digest it fits (71 bytes), and so does a short source with it.
    expect(decodeIndexRequest(bytes('R', `65535;;${name}`), longV6)).toMatchObject({ kind: 'register', addr: longV6 });
    expect(decodeIndexRequest(bytes('R', `65535;;${name};${SHA}`), '::1')).toMatchObject({ kind: 'register', addr: '::1' });
    // Exactly 99 bytes is fine: 1 + 1 + 27 + 1 + 25 + 1 + 43 with a 27-character address.
    const v6of27 = '2001:db8:aaaa:bbbb:cccc::12';
    expect(v6of27).toHaveLength(27);
    expect(decodeIndexRequest(bytes('R', `1;;${name};${SHA}`), v6of27)).toMatchObject({ kind: 'register' });
    expect(decodeIndexRequest(bytes('R', `10;;${name};${SHA}`), v6of27)?.kind).toBe('malformed');
  });

  it('refuses S with no name, several fields or a bad name', () => {
    for (const data of ['', 'a;b', 'a;', '..', 'a/b', 'x'.repeat(26), '\u009b']) {
      expect(decodeIndexRequest(bytes('S', data), SRC)?.kind, JSON.stringify(data)).toBe('malformed');
    }
  });

  it('refuses data that is not UTF-8 in R, S and T', () => {
    for (const type of ['R', 'S', 'T']) {
      expect(decodeIndexRequest(raw(type, [0x39, 0x3b, 0x3b, 0xff]), SRC)?.kind).toBe('malformed');
      expect(decodeIndexRequest(raw(type, [0xc3]), SRC)?.kind).toBe('malformed');
    }
  });

  it('answers O whatever its data (data is ignored in v1)', () => {
    expect(decodeIndexRequest(bytes('O'), SRC)).toEqual({ kind: 'list' });
    expect(decodeIndexRequest(bytes('O', 'anything;at;all'), SRC)).toEqual({ kind: 'list' });
    expect(decodeIndexRequest(raw('O', [0xff, 0xfe]), SRC)).toEqual({ kind: 'list' });
  });

  it('reads E 1 as leaving and ignores other E and any A', () => {
    expect(decodeIndexRequest(bytes('E', '1;bye'), SRC)).toEqual({ kind: 'leave' });
    expect(decodeIndexRequest(bytes('E', '1'), SRC)).toEqual({ kind: 'leave' });
    for (const data of ['2;x', '', '01;bye', 'x', '3;1']) expect(decodeIndexRequest(bytes('E', data), SRC)).toEqual({ kind: 'ignore' });
    expect(decodeIndexRequest(raw('E', [0x31, 0x3b, 0xff]), SRC)).toEqual({ kind: 'ignore' });
    for (const a of [bytes('A', 'a.txt'), bytes('A'), raw('A', [0xff])]) expect(decodeIndexRequest(a, SRC)).toEqual({ kind: 'ignore' });
  });

  it('returns undefined (no reply) for wrong sizes and unknown types', () => {
    for (const size of [0, 1, 99, 101, 512]) expect(decodeIndexRequest(Buffer.alloc(size, 0x53), SRC)).toBeUndefined();
    expect(decodeIndexRequest(Buffer.concat([bytes('S', 'a'), Buffer.alloc(1)]), SRC)).toBeUndefined();
    for (const type of ['r', 's', 'D', 'C', 'X', '\0', ' ', '\u00ff']) {
      expect(decodeIndexRequest(raw(type, 'a.txt'), SRC), JSON.stringify(type)).toBeUndefined();
    }
  });

  it('ignores bytes after the first NUL', () => {
    const buf = bytes('S', 'a.txt');
    buf.fill(0xff, 10);
    expect(decodeIndexRequest(buf, SRC)).toEqual({ kind: 'search', filename: 'a.txt' });
  });

  it('never throws on any 100-byte datagram, and every request it returns is valid', () => {
    const anyBytes = fc.uint8Array({ minLength: 100, maxLength: 100 });
    const alphabet = fc
      .constantFrom(...'RSTOAE'.split(''))
      .chain((t) =>
        fc
          .array(fc.oneof(fc.constantFrom(';', '', '0', '9100', '127.0.0.1', '::1', SHA, 'a.txt', '1'), fc.string({ maxLength: 30 })), { maxLength: 6 })
          .map((parts) => raw(t, [...Buffer.from(parts.join(';'), 'utf8')])),
      );
    fc.assert(
      fc.property(fc.oneof(anyBytes, alphabet), fc.constantFrom('127.0.0.1', '::1', '::ffff:10.0.0.1'), (buf, source) => {
        const req = decodeIndexRequest(buf, source);
        if (req === undefined) {
          expect('RSTOAE').not.toContain(String.fromCharCode(buf[0]));
          return;
        }
        switch (req.kind) {
          case 'malformed':
            expect(typeof req.reason).toBe('string');
            break;
          case 'register':
          case 'deregister':
            expect(filenameProblem(req.filename)).toBeUndefined();
            expect(req.port).toBeGreaterThanOrEqual(1);
            expect(req.port).toBeLessThanOrEqual(65535);
            expect(req.addr).not.toBe('');
            // What was decoded can be sent again (it fits a PDU).
            expect(encodeHolder('R', req).length).toBe(PDU_SIZE);
            break;
          case 'search':
            expect(filenameProblem(req.filename)).toBeUndefined();
            break;
          default:
            expect(['list', 'leave', 'ignore']).toContain(req.kind);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips any holder through encodeHolder and decodeIndexRequest / decodeIndexReply', () => {
    const holder = fc.record({
      port: fc.integer({ min: 1, max: 65535 }),
      addr: fc.oneof(fc.ipV4(), fc.constantFrom('::1', 'fe80::1', '2001:db8::8')),
      filename: validName,
      sha256: fc.option(
        fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url')),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(holder, (h) => {
        expect(decodeIndexRequest(encodeHolder('R', h), SRC)).toEqual({ kind: 'register', ...h });
        expect(decodeIndexRequest(encodeHolder('T', h), SRC)).toEqual({ kind: 'deregister', ...h });
        expect(decodeIndexReply(encodeHolder('S', h))).toEqual({ type: 'S', holder: h });
      }),
    );
  });
});

describe('parseHolderFields', () => {
  it('fills an empty addr with the source and reports problems as strings', () => {
    expect(parseHolderFields(['80', '', 'a'], '10.0.0.1')).toEqual({ port: 80, addr: '10.0.0.1', filename: 'a', sha256: undefined });
    expect(typeof parseHolderFields(['80', 'x', 'a'])).toBe('string');
    expect(typeof parseHolderFields(['80', '', 'a', SHA, ''])).toBe('string');
  });
});

describe('packListNames', () => {
  /** Data bytes of the list packet with this id and these names. */
  const packetBytes = (id: number, names: string[]) => Buffer.byteLength([String(id), ...names].join(';'));

  it('packs nothing for no names and one packet for one name', () => {
    expect(packListNames([])).toEqual([]);
    expect(packListNames(['a'])).toEqual([['a']]);
  });

  it('puts at most 4 names in a packet', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
    expect(MAX_NAMES_PER_LIST_PACKET).toBe(4);
    expect(packListNames(names)).toEqual([['a', 'b', 'c', 'd'], ['e', 'f', 'g', 'h'], ['i']]);
  });

  it('puts fewer long names in a packet so it fits in 99 bytes', () => {
    const long = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(25));
    const packets = packListNames(long);
    // 1 + 4 * 26 = 105 > 99, 1 + 3 * 26 = 79 fits.
    expect(packets.map((p) => p.length)).toEqual([3, 2]);
    packets.forEach((p, id) => expect(packetBytes(id, p)).toBeLessThanOrEqual(PDU_DATA_MAX));
  });

  it('fills a packet to exactly 99 bytes, and counts a longer packet id', () => {
    const full = ['a'.repeat(25), 'b'.repeat(25), 'c'.repeat(25), 'd'.repeat(19)]; // '0' + 4 ';' + 94 = 99
    expect(packListNames(full)).toEqual([full]);
    expect(encodeListPacket(0, full).indexOf(0)).toBe(-1); // all 99 data bytes used
    // The same names as packet 10 need 100 bytes: the last one moves to packet 11.
    const filler = Array.from({ length: 40 }, (_, i) => `f${i}`);
    const packets = packListNames([...filler, ...full]);
    expect(packets).toHaveLength(12);
    expect(packets[10]).toEqual(full.slice(0, 3));
    expect(packets[11]).toEqual(full.slice(3));
  });

  it('keeps the order, uses 1..4 names per packet, fits every packet and packs greedily', () => {
    fc.assert(
      fc.property(fc.array(validName, { maxLength: 80, size: 'max' }), (names) => {
        const packets = packListNames(names);
        expect(packets.flat()).toEqual(names);
        packets.forEach((p, id) => {
          expect(p.length).toBeGreaterThanOrEqual(1);
          expect(p.length).toBeLessThanOrEqual(4);
          expect(packetBytes(id, p)).toBeLessThanOrEqual(PDU_DATA_MAX);
          expect(() => encodeListPacket(id, p)).not.toThrow();
          // A packet is closed only when it is full or the next name would not fit.
          if (id < packets.length - 1) {
            const next = packets[id + 1][0];
            expect(p.length === 4 || packetBytes(id, [...p, next]) > PDU_DATA_MAX).toBe(true);
          }
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('decodeIndexReply', () => {
  it('decodes A, S, E and O replies', () => {
    expect(decodeIndexReply(bytes('A', 'a.txt'))).toEqual({ type: 'A', filename: 'a.txt' });
    expect(decodeIndexReply(bytes('S', `9100;10.0.0.7;a.txt;${SHA}`))).toEqual({
      type: 'S',
      holder: { port: 9100, addr: '10.0.0.7', filename: 'a.txt', sha256: SHA },
    });
    expect(decodeIndexReply(bytes('E', '3;no holder'))).toEqual({ type: 'E', code: 3, description: 'no holder' });
    expect(decodeIndexReply(bytes('E', '5'))).toEqual({ type: 'E', code: 5, description: '' });
    expect(decodeIndexReply(bytes('E', '4;a;b'))).toEqual({ type: 'E', code: 4, description: 'a;b' });
    expect(decodeIndexReply(bytes('O', '2'))).toEqual({ type: 'O', fields: ['2'] });
    expect(decodeIndexReply(bytes('O', '127.0.0.1;9100;1'))).toEqual({ type: 'O', fields: ['127.0.0.1', '9100', '1'] });
  });

  it('throws ERR_MALFORMED_PDU for unexpected replies', () => {
    const bad = [
      bytes('A', 'a;b'),
      bytes('S', 'a.txt'),
      bytes('S', '0;1.2.3.4;a'),
      bytes('S', '9100;1.2.3.4;a;bad'),
      bytes('E', ''),
      bytes('E', 'x;y'),
      bytes('E', '256;y'),
      bytes('R', '9100;;a'),
      bytes('T', '9100;;a'),
      bytes('X', 'a'),
      raw('A', [0xff]),
      Buffer.alloc(99),
      Buffer.alloc(101),
    ];
    for (const buf of bad) {
      expect(() => decodeIndexReply(buf)).toThrow(PeerdexError);
      try {
        decodeIndexReply(buf);
      } catch (err) {
        expect((err as PeerdexError).code).toBe('ERR_MALFORMED_PDU');
      }
    }
  });

  it('either returns or throws PeerdexError for any input', () => {
    const structured = fc
      .tuple(fc.constantFrom('A', 'S', 'E', 'O', 'R', 'X'), fc.array(fc.oneof(fc.constantFrom('', '1', '9100', '::1', '1.2.3.4', SHA), fc.string()), { maxLength: 5 }))
      .map(([t, parts]) => raw(t, [...Buffer.from(parts.join(';'), 'utf8')]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 100, maxLength: 100 }), fc.uint8Array({ maxLength: 200 }), structured), (buf) => {
        try {
          decodeIndexReply(buf);
        } catch (err) {
          expect(err).toBeInstanceOf(PeerdexError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decodeErrorFields needs a numeric code', () => {
    expect(decodeErrorFields(['6', 'busy'])).toEqual({ type: 'E', code: 6, description: 'busy' });
    expect(() => decodeErrorFields([])).toThrow(PeerdexError);
  });
});
