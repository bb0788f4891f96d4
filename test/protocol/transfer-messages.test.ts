import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  decodeTransferAnswer,
  encodeContentHeader,
  encodeDownload,
  FRAME_HEADER_SIZE,
  FRAME_PAYLOAD_MAX,
  FRAME_TYPE,
  packetsFor,
  parseDownloadFields,
  readFrameHeader,
  writeFrameHeader,
} from '../../src/protocol/transfer-messages.js';
import { decodePdu, PDU_SIZE } from '../../src/protocol/pdu.js';
import { PeerdexError } from '../../src/protocol/errors.js';
import { encodeError } from '../../src/protocol/index-messages.js';

const SHA = createHash('sha256').update('content').digest('base64url');
const bytes = (type: string, data = ''): Buffer => {
  const out = Buffer.alloc(PDU_SIZE);
  out.write(type + data, 'utf8');
  return out;
};
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PeerdexError);
    return (err as PeerdexError).code;
  }
  return undefined;
};

describe('D requests', () => {
  it('encodes a whole-file request as the name alone and a range as name;offset;length', () => {
    expect(encodeDownload('a.txt').equals(bytes('D', 'a.txt'))).toBe(true);
    expect(encodeDownload('a.txt', 0, 0).equals(bytes('D', 'a.txt'))).toBe(true);
    expect(encodeDownload('a.txt', 10, 0).equals(bytes('D', 'a.txt;10;0'))).toBe(true);
    expect(encodeDownload('a.txt', 0, 5).equals(bytes('D', 'a.txt;0;5'))).toBe(true);
    expect(encodeDownload('a', 1048576, 2097152).equals(bytes('D', 'a;1048576;2097152'))).toBe(true);
  });

  it('parses the fields of a D PDU', () => {
    expect(parseDownloadFields(['a.txt'])).toEqual({ filename: 'a.txt', offset: 0, length: 0 });
    expect(parseDownloadFields(['a.txt', '10', '0'])).toEqual({ filename: 'a.txt', offset: 10, length: 0 });
    expect(parseDownloadFields(decodePdu(encodeDownload('b', 3, 4)).fields)).toEqual({ filename: 'b', offset: 3, length: 4 });
  });

  it('refuses wrong field counts, unsafe names and non-numeric ranges', () => {
    for (const fields of [
      [''],
      ['a', '1'],
      ['a', '1', '2', '3'],
      ['..'],
      ['a/b'],
      ['x'.repeat(26)],
      ['a', '-1', '0'],
      ['a', '1', 'x'],
      ['a', '', '0'],
      ['a', '1.5', '0'],
      ['a', '0', ' 1'],
    ]) {
      expect(typeof parseDownloadFields(fields), JSON.stringify(fields)).toBe('string');
    }
  });
});

describe('C header and E answers', () => {
  it('encodes num_packets;size;sha256', () => {
    expect(encodeContentHeader({ numPackets: 1, size: 5, sha256: SHA }).equals(bytes('C', `1;5;${SHA}`))).toBe(true);
    expect(encodeContentHeader({ numPackets: 0, size: 0, sha256: SHA }).equals(bytes('C', `0;0;${SHA}`))).toBe(true);
  });

  it('decodes C headers, the empty file included', () => {
    expect(decodeTransferAnswer(bytes('C', `1;5;${SHA}`))).toEqual({ type: 'C', numPackets: 1, size: 5, sha256: SHA });
    expect(decodeTransferAnswer(bytes('C', `0;0;${SHA}`))).toEqual({ type: 'C', numPackets: 0, size: 0, sha256: SHA });
    expect(decodeTransferAnswer(bytes('C', `2;${FRAME_PAYLOAD_MAX + 1};${SHA}`))).toMatchObject({ numPackets: 2 });
    // Smaller frames than 1 MiB are allowed: up to one packet per byte.
    expect(decodeTransferAnswer(bytes('C', `5;5;${SHA}`))).toMatchObject({ numPackets: 5 });
  });

  it('decodes E answers', () => {
    expect(decodeTransferAnswer(encodeError(3, 'no such file'))).toEqual({ type: 'E', code: 3, description: 'no such file' });
    expect(decodeTransferAnswer(bytes('E', '4'))).toEqual({ type: 'E', code: 4, description: '' });
  });

  it('refuses headers whose packet count cannot carry the size, and other junk', () => {
    const bad = [
      bytes('C', `0;5;${SHA}`),
      bytes('C', `6;5;${SHA}`),
      bytes('C', `1;0;${SHA}`),
      bytes('C', `1;${FRAME_PAYLOAD_MAX + 1};${SHA}`),
      bytes('C', `1;5`),
      bytes('C', `1;5;${SHA};x`),
      bytes('C', `1;5;bad`),
      bytes('C', `x;5;${SHA}`),
      bytes('C', `1;-5;${SHA}`),
      bytes('C', `4294967296;${2 ** 33};${SHA}`),
      bytes('E', 'x;y'),
      bytes('E', ''),
      bytes('D', 'a.txt'),
      bytes('A', 'a.txt'),
      Buffer.alloc(99),
      Buffer.alloc(101),
    ];
    for (const buf of bad)
      expect(
        codeOf(() => decodeTransferAnswer(buf)),
        buf.toString('latin1', 0, 20),
      ).toBe('ERR_MALFORMED_PDU');
  });

  it('round-trips any consistent header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (size, digest) => {
        const h = { numPackets: packetsFor(size), size, sha256: Buffer.from(digest).toString('base64url') };
        expect(decodeTransferAnswer(encodeContentHeader(h))).toEqual({ type: 'C', ...h });
      }),
    );
  });

  it('either returns or throws PeerdexError for any input', () => {
    const structured = fc
      .tuple(fc.constantFrom('C', 'E', 'D'), fc.array(fc.oneof(fc.constantFrom('0', '1', '5', '4294967295', SHA), fc.string()), { maxLength: 4 }))
      .map(([t, parts]) => {
        const out = Buffer.alloc(PDU_SIZE);
        out.write(t, 0, 'latin1');
        Buffer.from(parts.join(';')).copy(out, 1, 0, 99);
        return out;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 100, maxLength: 100 }), fc.uint8Array({ maxLength: 150 }), structured), (buf) => {
        try {
          decodeTransferAnswer(buf);
        } catch (err) {
          expect(err).toBeInstanceOf(PeerdexError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('data frames', () => {
  it('counts packets for a size', () => {
    expect(packetsFor(0)).toBe(0);
    expect(packetsFor(1)).toBe(1);
    expect(packetsFor(FRAME_PAYLOAD_MAX)).toBe(1);
    expect(packetsFor(FRAME_PAYLOAD_MAX + 1)).toBe(2);
    expect(packetsFor(1024 ** 3)).toBe(1024);
  });

  it('writes C, packet id and length big-endian', () => {
    const out = Buffer.alloc(FRAME_HEADER_SIZE + 3, 0xee);
    writeFrameHeader(out, 0, 0x01020304, 3);
    expect([...out.subarray(0, 9)]).toEqual([0x43, 1, 2, 3, 4, 0, 0, 0, 3]);
    expect(out[9]).toBe(0xee); // the payload area is the caller's
    expect(FRAME_TYPE).toBe(0x43);
  });

  it('writes at an offset and reads back what it wrote', () => {
    const out = Buffer.alloc(30);
    writeFrameHeader(out, 7, 0xffffffff, FRAME_PAYLOAD_MAX);
    expect(readFrameHeader(out, 7)).toEqual({ packetId: 0xffffffff, length: FRAME_PAYLOAD_MAX });
    expect(readFrameHeader(out.subarray(7), 0)).toEqual({ packetId: 0xffffffff, length: FRAME_PAYLOAD_MAX });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: FRAME_PAYLOAD_MAX }), fc.nat(20), (id, len, at) => {
        const buf = Buffer.alloc(at + FRAME_HEADER_SIZE);
        writeFrameHeader(buf, at, id, len);
        expect(readFrameHeader(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), at)).toEqual({ packetId: id, length: len });
      }),
    );
  });

  it('refuses a wrong type byte and lengths of 0 or over 1 MiB', () => {
    const frame = (first: number, len: number) => {
      const b = Buffer.alloc(9);
      b[0] = first;
      b.writeUInt32BE(len, 5);
      return b;
    };
    expect(codeOf(() => readFrameHeader(frame(0x44, 1), 0))).toBe('ERR_MALFORMED_PDU');
    expect(codeOf(() => readFrameHeader(frame(0x43, 0), 0))).toBe('ERR_MALFORMED_PDU');
    expect(codeOf(() => readFrameHeader(frame(0x43, FRAME_PAYLOAD_MAX + 1), 0))).toBe('ERR_MALFORMED_PDU');
    expect(codeOf(() => readFrameHeader(frame(0x43, 0xffffffff), 0))).toBe('ERR_MALFORMED_PDU');
  });

  it('refuses fewer than 9 bytes instead of reading past the end of the view', () => {
    // Small Buffers share one pool: bytes past a view's end belong to other buffers.
    const pooled = Buffer.from([0x43, 0, 0, 0, 1, 0, 0, 0]);
    expect(codeOf(() => readFrameHeader(pooled, 0))).toBe('ERR_MALFORMED_PDU');
    const big = Buffer.alloc(20);
    writeFrameHeader(big, 0, 1, 1);
    expect(codeOf(() => readFrameHeader(big.subarray(0, 8), 0))).toBe('ERR_MALFORMED_PDU');
    expect(codeOf(() => readFrameHeader(big, 12))).toBe('ERR_MALFORMED_PDU');
    expect(codeOf(() => readFrameHeader(big, -1))).toBe('ERR_MALFORMED_PDU');
    expect(codeOf(() => readFrameHeader(new Uint8Array(0), 0))).toBe('ERR_MALFORMED_PDU');
  });

  it('reads a header split from a stream at every byte offset once 9 bytes have arrived', () => {
    const stream = Buffer.alloc(FRAME_HEADER_SIZE + 4);
    writeFrameHeader(stream, 0, 42, 4);
    stream.write('abcd', 9);
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = Buffer.concat([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(readFrameHeader(got, 0)).toEqual({ packetId: 42, length: 4 });
      if (cut < FRAME_HEADER_SIZE) expect(codeOf(() => readFrameHeader(stream.subarray(0, cut), 0))).toBe('ERR_MALFORMED_PDU');
    }
  });
});
