/**
 * Index requests and replies (PROTOCOL.md section 1) on top of the 100-byte PDU.
 *
 *   R  port;addr;filename[;sha256]      -> A filename | E code;text
 *   S  filename                         -> S port;addr;filename[;sha256] | E
 *   T  port;addr;filename[;sha256]      -> A filename | E
 *   O  (data ignored)                   -> O num_servers, then per server
 *                                          O addr;port;num_packets and O packet_id;name;...
 *   E  1;description                    -> (no reply: the sender is leaving)
 *   A                                   -> (no reply)
 */
import { PeerdexError } from './errors.js';
import { ErrorCode } from './errors.js';
import { asBuffer, decodePdu, encodePdu, INDEX_TYPES, PDU_DATA_MAX, PDU_SIZE } from './pdu.js';
import { filenameProblem, isAddress, isSha256Text, normalizeAddress, parseCount, parsePort } from './fields.js';

export interface Holder {
  port: number;
  /** Normalized address text ('' never appears here: the index fills in the source). */
  addr: string;
  filename: string;
  sha256?: string | undefined;
}

export type IndexRequest =
  ({ kind: 'register' } & Holder) | ({ kind: 'deregister' } & Holder) | { kind: 'search'; filename: string } | { kind: 'list' } | { kind: 'leave' } | { kind: 'ignore' };

/** A request refused as malformed (E 4); `reason` goes into the reply. */
export interface MalformedRequest {
  kind: 'malformed';
  reason: string;
}

/**
 * Decodes a datagram addressed to the index. Returns `undefined` for datagrams that get no
 * reply at all (wrong size, unknown type); a `malformed` result is answered with E 4.
 * `source` fills in an empty addr field.
 */
export function decodeIndexRequest(buf: Uint8Array, source: string): IndexRequest | MalformedRequest | undefined {
  if (buf.length !== PDU_SIZE) return undefined;
  const type = String.fromCharCode(buf[0]);
  if (!INDEX_TYPES.has(type)) return undefined;
  // O's data is ignored in v1, so bytes that are not UTF-8 there do not make it malformed.
  if (type === 'O') return { kind: 'list' };
  if (type === 'S') {
    const search = decodeAsciiSearch(buf);
    if (search) return search;
  }
  let fields: string[];
  try {
    fields = decodePdu(buf).fields;
  } catch (err) {
    if (type === 'A' || type === 'E') return { kind: 'ignore' };
    return { kind: 'malformed', reason: (err as Error).message };
  }
  switch (type) {
    case 'R':
    case 'T':
      return decodeHolderRequest(type === 'R' ? 'register' : 'deregister', fields, source);
    case 'S': {
      if (fields.length !== 1) return { kind: 'malformed', reason: `search takes 1 field, got ${fields.length}` };
      const problem = filenameProblem(fields[0]);
      return problem ? { kind: 'malformed', reason: problem } : { kind: 'search', filename: fields[0] };
    }
    case 'E':
      return fields[0] === String(ErrorCode.Exit) ? { kind: 'leave' } : { kind: 'ignore' };
    default:
      return { kind: 'ignore' };
  }
}

/**
 * S is most of an index's traffic: its one field is read straight from the bytes when they are
 * ASCII (no split, no field array). Gives the same result as the general path, which handles
 * anything else (undefined here).
 */
function decodeAsciiSearch(buf: Uint8Array): IndexRequest | MalformedRequest | undefined {
  let end = 1;
  let separators = 0;
  for (; end < PDU_SIZE; end++) {
    const c = buf[end];
    if (c === 0) break;
    if (c > 0x7f) return undefined;
    if (c === 0x3b) separators++;
  }
  if (separators > 0) return { kind: 'malformed', reason: `search takes 1 field, got ${separators + 1}` };
  const filename = asBuffer(buf).toString('latin1', 1, end);
  const problem = filenameProblem(filename);
  return problem ? { kind: 'malformed', reason: problem } : { kind: 'search', filename };
}

function decodeHolderRequest(kind: 'register' | 'deregister', fields: string[], source: string): IndexRequest | MalformedRequest {
  const holder = parseHolderFields(fields, source);
  return typeof holder === 'string' ? { kind: 'malformed', reason: holder } : { kind, ...holder };
}

/**
 * Parses `port;addr;filename[;sha256]` (R, T and S replies share it). Returns the reason as a
 * string when a field is missing, extra or invalid.
 */
export function parseHolderFields(fields: readonly string[], source = ''): Holder | string {
  if (fields.length !== 3 && fields.length !== 4) return `expected port;addr;filename[;sha256], got ${fields.length} fields`;
  const port = parsePort(fields[0]);
  if (port === undefined) return `bad port ${JSON.stringify(fields[0])}`;
  let addr = fields[1];
  if (addr === '') addr = source;
  else if (!isAddress(addr)) return `bad address ${JSON.stringify(addr)}`;
  const filename = fields[2];
  const problem = filenameProblem(filename);
  if (problem) return problem;
  const sha256 = fields[3];
  if (sha256 !== undefined && !isSha256Text(sha256)) return 'bad sha256 (want 43 base64url characters)';
  addr = normalizeAddress(addr);
  // An empty addr filled in with a long IPv6 source could make the S reply overflow its PDU.
  const replyBytes = String(port).length + addr.length + Buffer.byteLength(filename) + (sha256 === undefined ? 2 : 3 + sha256.length);
  if (replyBytes > PDU_DATA_MAX) return `port;addr;filename;sha256 with addr ${addr} is ${replyBytes} bytes, over ${PDU_DATA_MAX}`;
  return { port, addr, filename, sha256 };
}

// ---- replies ----------------------------------------------------------------------------

export const encodeAck = (filename: string, out?: Buffer): Buffer => encodePdu('A', [filename], out);

export const encodeError = (code: number, description: string, out?: Buffer): Buffer => encodePdu('E', [String(code), description.replace(/[;\0]/g, ',')], out, true);

export const encodeHolder = (type: 'R' | 'S' | 'T', h: Holder, out?: Buffer): Buffer =>
  encodePdu(type, h.sha256 ? [String(h.port), h.addr, h.filename, h.sha256] : [String(h.port), h.addr, h.filename], out);

export const encodeSearch = (filename: string): Buffer => encodePdu('S', [filename]);
export const encodeList = (): Buffer => encodePdu('O', []);
export const encodeLeave = (description = 'leaving'): Buffer => encodeError(ErrorCode.Exit, description);

export const encodeListCount = (numServers: number): Buffer => encodePdu('O', [String(numServers)]);
export const encodeListServer = (addr: string, port: number, numPackets: number): Buffer => encodePdu('O', [addr, String(port), String(numPackets)]);
export const encodeListPacket = (packetId: number, names: readonly string[]): Buffer => encodePdu('O', [String(packetId), ...names]);

export const MAX_NAMES_PER_LIST_PACKET = 4;

/**
 * Splits one server's names into list packets: each holds 1..4 names, as many as fit in the
 * 99 data bytes after `packet_id;`. Returns the groups; ids are their positions.
 */
export function packListNames(names: readonly string[]): string[][] {
  const packets: string[][] = [];
  let current: string[] = [];
  let used = 0;
  for (const name of names) {
    const bytes = Buffer.byteLength(name) + 1; // the ';' before it
    const idBytes = String(packets.length).length;
    if (current.length > 0 && (current.length === MAX_NAMES_PER_LIST_PACKET || idBytes + used + bytes > PDU_DATA_MAX)) {
      packets.push(current);
      current = [];
      used = 0;
    }
    current.push(name);
    used += bytes;
  }
  if (current.length > 0) packets.push(current);
  return packets;
}

// ---- reply decoding (client side) -------------------------------------------------------

export type IndexReply = { type: 'A'; filename: string } | { type: 'S'; holder: Holder } | { type: 'E'; code: number; description: string } | { type: 'O'; fields: string[] };

/** Decodes a datagram from the index; throws ERR_MALFORMED_PDU for anything unexpected. */
export function decodeIndexReply(buf: Uint8Array): IndexReply {
  const { type, fields } = decodePdu(buf);
  switch (type) {
    case 'A':
      if (fields.length !== 1) break;
      return { type, filename: fields[0] };
    case 'S': {
      const holder = parseHolderFields(fields);
      if (typeof holder === 'string') throw new PeerdexError('ERR_MALFORMED_PDU', `bad S reply: ${holder}`);
      return { type, holder };
    }
    case 'E':
      return decodeErrorFields(fields);
    case 'O':
      return { type, fields };
  }
  throw new PeerdexError('ERR_MALFORMED_PDU', `unexpected reply type ${JSON.stringify(type)}`);
}

export function decodeErrorFields(fields: readonly string[]): { type: 'E'; code: number; description: string } {
  const code = parseCount(fields[0] ?? '', 255);
  if (code === undefined) throw new PeerdexError('ERR_MALFORMED_PDU', 'E PDU without a numeric code');
  return { type: 'E', code, description: fields.slice(1).join(';') };
}
