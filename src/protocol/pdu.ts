/**
 * The fixed 100-byte PDU shared by UDP index traffic and TCP request/answer headers.
 *
 *   byte 0      type, one ASCII letter (R S T O A E on UDP; D C E on TCP)
 *   bytes 1..99 data: UTF-8 fields joined by ';', ended by the first NUL (or byte 99),
 *               NUL padding after it (ignored when decoding)
 *
 * Pure: no sockets, files or timers. Every decoder checks bounds before reading.
 */
import { isUtf8 } from 'node:buffer';
import { PeerdexError } from './errors.js';

export const PDU_SIZE = 100;
export const PDU_DATA_MAX = PDU_SIZE - 1;

export const PduType = {
  Register: 'R',
  Search: 'S',
  Deregister: 'T',
  List: 'O',
  Ack: 'A',
  Error: 'E',
  Download: 'D',
  Content: 'C',
} as const;
export type PduType = (typeof PduType)[keyof typeof PduType];

/** Letters the index accepts; anything else is dropped without a reply. */
export const INDEX_TYPES: ReadonlySet<string> = new Set(['R', 'S', 'T', 'O', 'A', 'E']);

export interface Pdu {
  type: string;
  /** The data split on ';'. Empty data gives `['']`. */
  fields: string[];
}

/** The same bytes as a Buffer (for its string decoders), without copying. */
export const asBuffer = (buf: Uint8Array): Buffer => (Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));

/** Length of the data part: up to the first NUL, at most 99 bytes. */
export function dataLength(buf: Uint8Array): number {
  const end = buf.indexOf(0, 1);
  return end === -1 ? PDU_DATA_MAX : end - 1;
}

/**
 * Decodes one PDU. Throws ERR_MALFORMED_PDU for a wrong size or data that is not UTF-8;
 * field rules are the caller's (they depend on the request type).
 */
export function decodePdu(buf: Uint8Array): Pdu {
  if (buf.length !== PDU_SIZE) {
    throw new PeerdexError('ERR_MALFORMED_PDU', `PDU must be ${PDU_SIZE} bytes, got ${buf.length}`);
  }
  const type = String.fromCharCode(buf[0]);
  // One pass finds the end of the data and whether it is plain ASCII (always valid UTF-8, and
  // decoded the same as Latin-1): the common case then needs no validation call.
  let end = 1;
  let ascii = true;
  for (; end < PDU_SIZE; end++) {
    const c = buf[end];
    if (c === 0) break;
    if (c > 0x7f) ascii = false;
  }
  const bytes = asBuffer(buf);
  let text: string;
  if (ascii) text = bytes.toString('latin1', 1, end);
  else {
    if (!isUtf8(bytes.subarray(1, end))) throw new PeerdexError('ERR_MALFORMED_PDU', 'PDU data is not valid UTF-8');
    text = bytes.toString('utf8', 1, end);
  }
  return { type, fields: text.split(';') };
}

/**
 * Encodes a PDU into `out` (100 bytes, fresh or reused). Fields must not contain ';' or NUL;
 * data longer than 99 bytes is an error unless `truncate` is set (used for E descriptions).
 */
export function encodePdu(type: string, fields: readonly string[], out: Buffer = Buffer.allocUnsafe(PDU_SIZE), truncate = false): Buffer {
  if (type.length !== 1 || type.charCodeAt(0) > 0x7f) {
    throw new PeerdexError('ERR_INVALID_FIELD', `PDU type must be one ASCII letter, got ${JSON.stringify(type)}`);
  }
  for (const f of fields) {
    if (f.includes(';') || f.includes('\0')) {
      throw new PeerdexError('ERR_INVALID_FIELD', `PDU field may not contain ';' or NUL: ${JSON.stringify(f)}`);
    }
  }
  const text = fields.join(';');
  out[0] = type.charCodeAt(0);
  const written = out.write(text, 1, PDU_DATA_MAX, 'utf8');
  // With 4 or more bytes to spare nothing was left out (a character is at most 4 bytes), so
  // the text's length in bytes is only needed near the limit.
  if (written > PDU_DATA_MAX - 4 && written < Buffer.byteLength(text)) {
    if (!truncate) throw new PeerdexError('ERR_INVALID_FIELD', `PDU data exceeds ${PDU_DATA_MAX} bytes`);
    // Buffer#write never splits a character, so the cut text is still valid UTF-8.
  }
  // A plain loop: the padding is a few dozen bytes, less than the cost of calling fill().
  for (let i = 1 + written; i < PDU_SIZE; i++) out[i] = 0;
  return out;
}
