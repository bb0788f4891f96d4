/**
 * Content transfer over TCP (PROTOCOL.md section 2).
 *
 *   D request (100-byte PDU)  filename | filename;offset;length   (length 0: to the end)
 *   E answer  (100-byte PDU)  code;description
 *   C header  (100-byte PDU)  num_packets;size;sha256
 *   C frame                   byte 0 'C' | 1..4 packet_id u32 BE | 5..8 length n u32 BE | n bytes
 */
import { PeerdexError } from './errors.js';
import { decodePdu, encodePdu } from './pdu.js';
import { filenameProblem, isSha256Text, parseCount } from './fields.js';

export const FRAME_HEADER_SIZE = 9;
export const FRAME_PAYLOAD_MAX = 1024 * 1024;
export const FRAME_TYPE = 0x43; // 'C'

export interface DownloadRequest {
  filename: string;
  offset: number;
  /** 0 means "to the end". */
  length: number;
}

export interface ContentHeader {
  numPackets: number;
  size: number;
  sha256: string;
}

export function encodeDownload(filename: string, offset = 0, length = 0): Buffer {
  return offset === 0 && length === 0 ? encodePdu('D', [filename]) : encodePdu('D', [filename, String(offset), String(length)]);
}

/** Parses the fields of a D PDU; the reason string means "answer E 4". */
export function parseDownloadFields(fields: readonly string[]): DownloadRequest | string {
  if (fields.length !== 1 && fields.length !== 3) return `expected filename or filename;offset;length, got ${fields.length} fields`;
  const filename = fields[0];
  const problem = filenameProblem(filename);
  if (problem) return problem;
  if (fields.length === 1) return { filename, offset: 0, length: 0 };
  const offset = parseCount(fields[1]);
  const length = parseCount(fields[2]);
  if (offset === undefined || length === undefined) return 'offset and length must be decimal numbers';
  return { filename, offset, length };
}

export const packetsFor = (size: number): number => Math.ceil(size / FRAME_PAYLOAD_MAX);

export const encodeContentHeader = (h: ContentHeader): Buffer => encodePdu('C', [String(h.numPackets), String(h.size), h.sha256]);

/** Decodes the 100-byte answer to a D: a C header or an E. */
export function decodeTransferAnswer(buf: Uint8Array): ({ type: 'C' } & ContentHeader) | { type: 'E'; code: number; description: string } {
  const { type, fields } = decodePdu(buf);
  if (type === 'E') {
    const code = parseCount(fields[0] ?? '', 255);
    if (code === undefined) throw new PeerdexError('ERR_MALFORMED_PDU', 'E answer without a numeric code');
    return { type, code, description: fields.slice(1).join(';') };
  }
  if (type !== 'C' || fields.length !== 3) throw new PeerdexError('ERR_MALFORMED_PDU', `expected a C header or E, got ${JSON.stringify(type)}`);
  const numPackets = parseCount(fields[0], 0xffffffff);
  const size = parseCount(fields[1]);
  const sha256 = fields[2];
  if (numPackets === undefined || size === undefined || !isSha256Text(sha256)) {
    throw new PeerdexError('ERR_MALFORMED_PDU', 'bad C header fields');
  }
  // Frames may be smaller than 1 MiB, so more packets than the minimum are allowed, never fewer
  // than the size needs nor more than one per byte.
  const countFits = size === 0 ? numPackets === 0 : numPackets >= packetsFor(size) && numPackets <= size;
  if (!countFits) throw new PeerdexError('ERR_MALFORMED_PDU', `C header says ${numPackets} packets for ${size} bytes`);
  return { type: 'C', numPackets, size, sha256 };
}

/** Writes a frame header into `out` at `at` (the payload follows it in the same buffer). */
export function writeFrameHeader(out: Buffer, at: number, packetId: number, length: number): void {
  out[at] = FRAME_TYPE;
  out.writeUInt32BE(packetId, at + 1);
  out.writeUInt32BE(length, at + 5);
}

/** Reads a frame header at `at`; throws ERR_MALFORMED_PDU unless 9 bytes are there and valid. */
export function readFrameHeader(buf: Uint8Array, at: number): { packetId: number; length: number } {
  // A DataView reaches past a pooled Buffer's end into its neighbours, so check bounds first.
  if (!(at >= 0 && at + FRAME_HEADER_SIZE <= buf.length)) {
    throw new PeerdexError('ERR_MALFORMED_PDU', `frame header needs ${FRAME_HEADER_SIZE} bytes at ${at}, buffer has ${buf.length}`);
  }
  if (buf[at] !== FRAME_TYPE) throw new PeerdexError('ERR_MALFORMED_PDU', `frame does not start with 'C' (got 0x${buf[at].toString(16)})`);
  const view = new DataView(buf.buffer, buf.byteOffset + at, FRAME_HEADER_SIZE);
  const packetId = view.getUint32(1);
  const length = view.getUint32(5);
  if (length < 1 || length > FRAME_PAYLOAD_MAX) throw new PeerdexError('ERR_MALFORMED_PDU', `frame length ${length} out of range 1..${FRAME_PAYLOAD_MAX}`);
  return { packetId, length };
}
