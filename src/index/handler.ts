/**
 * The index's request handler: one datagram in, the reply datagrams and one event out.
 * Pure apart from mutating the registry store it is given; the clock is a parameter.
 *
 * Checks run in PROTOCOL.md's order: well-formed (E 4), exists (E 3), permitted (E 5).
 *
 * Bounded work per datagram: an `O` answer is built here only when it is short (at most
 * `maxListPdusAtOnce` PDUs); a longer one, for an address that has proven itself, comes back
 * as `stream: true` and the UDP adapter sends it a slice at a time (list-streamer.ts).
 */
import { ErrorCode } from '../protocol/errors.js';
import {
  decodeIndexRequest,
  encodeAck,
  encodeError,
  encodeHolder,
  encodeListCount,
  encodeListPacket,
  encodeListServer,
  packListNames,
  type Holder,
} from '../protocol/index-messages.js';
import { addressPrefix } from './address-prefix.js';
import { cookieOfList, ListCookies } from './list-cookie.js';
import type { RegistryStore } from './store.js';
import type { TokenBuckets } from './token-buckets.js';

export type IndexEvent =
  | { type: 'registered'; holder: Holder; from: string }
  | { type: 'refreshed'; holder: Holder; from: string }
  | { type: 'deregistered'; holder: Holder; from: string }
  | { type: 'left'; from: string; holders: Holder[] }
  | { type: 'searched'; filename: string; from: string; found: boolean }
  | { type: 'listed'; from: string; pdus: number }
  | { type: 'streaming'; from: string; proof: ListProof }
  | { type: 'limited'; request: string; from: string; reason: string }
  | { type: 'refused'; request: string; from: string; code: number; reason: string }
  | { type: 'dropped'; from: string; bytes: number };

/** Why an address may be sent a long listing. */
export type ListProof = 'registration' | 'cookie' | 'open';

export interface HandleResult {
  replies: Buffer[];
  event: IndexEvent | undefined;
  /** The answer is a long listing for `from`, to be sent paced (no replies here). */
  stream?: boolean;
}

export interface IndexHandlerOptions {
  registry: RegistryStore;
  /** Accept an R whose addr names another host (off by default: PROTOCOL.md, E 5). */
  trustClaimedAddresses?: boolean;
  /**
   * Most PDUs one O may send to an address that holds no registration and sent no valid
   * cookie. A 100-byte O must not turn into megabytes towards a spoofed victim; a bigger
   * listing gets E 6 with a cookie instead. Default 4; Infinity: no limit.
   */
  maxListPdusUnproven?: number;
  /** Longest O answer built at once (default 64 PDUs); a longer one is streamed. */
  maxListPdusAtOnce?: number;
  /** Issues and checks listing cookies. Default: one with a secret of its own. */
  cookies?: ListCookies;
  /** Per-source bucket of new registrations (R); over it only refreshes succeed. Default: none. */
  registerRate?: TokenBuckets;
  /** Per-source bucket of O requests; over it an O is dropped. Default: none. */
  listRate?: TokenBuckets;
}

export type IndexHandler = (datagram: Uint8Array, from: string, now: number) => HandleResult;

const NOTHING: HandleResult = { replies: [], event: undefined };

export function createIndexHandler(options: IndexHandlerOptions): IndexHandler {
  const { registry } = options;
  const trust = options.trustClaimedAddresses ?? false;
  const maxListPdusUnproven = options.maxListPdusUnproven ?? 4;
  const atOnce = Math.max(options.maxListPdusAtOnce ?? 64, Number.isFinite(maxListPdusUnproven) ? maxListPdusUnproven : 0);
  const cookies = options.cookies ?? new ListCookies();
  const { registerRate, listRate } = options;

  const refuse = (request: string, from: string, code: number, reason: string): HandleResult => ({
    replies: [encodeError(code, reason)],
    event: { type: 'refused', request, from, code, reason },
  });

  return (datagram, from, now) => {
    const req = decodeIndexRequest(datagram, from);
    if (req === undefined) return { replies: [], event: { type: 'dropped', from, bytes: datagram.length } };
    switch (req.kind) {
      case 'malformed':
        return refuse(String.fromCharCode(datagram[0]), from, ErrorCode.Malformed, req.reason);
      case 'register': {
        if (req.addr !== from && !trust) {
          return refuse('R', from, ErrorCode.NotPermitted, `address ${req.addr} is not the sender's (${from})`);
        }
        const holder = toHolder(req);
        // Over its rate a source may still refresh what it holds: only growth is limited.
        const overRate = registerRate !== undefined && !registerRate.take(from, 1, now);
        const outcome = registry.register(holder, from, now, overRate);
        if (outcome === 'full') return refuse('R', from, ErrorCode.Busy, 'index is full, try again later');
        if (outcome === 'source-full') return refuse('R', from, ErrorCode.Busy, 'too many registrations from this address');
        if (outcome === 'prefix-full') return refuse('R', from, ErrorCode.Busy, `too many registrations from ${addressPrefix(from)}`);
        if (outcome === 'rate-limited') return refuse('R', from, ErrorCode.Busy, 'too many new registrations from this address, slow down');
        return { replies: [encodeAck(req.filename)], event: { type: outcome === 'added' ? 'registered' : 'refreshed', holder, from } };
      }
      case 'deregister': {
        const holder = toHolder(req);
        const outcome = registry.deregister(holder, from, now);
        if (outcome === 'missing') return refuse('T', from, ErrorCode.NotFound, `no registration of "${req.filename}" at ${req.addr};${req.port}`);
        if (outcome === 'forbidden') return refuse('T', from, ErrorCode.NotPermitted, 'registration was made from another address');
        return { replies: [encodeAck(req.filename)], event: { type: 'deregistered', holder, from } };
      }
      case 'search': {
        const holder = registry.nextHolder(req.filename, now);
        if (!holder) {
          return { replies: [encodeError(ErrorCode.NotFound, `no holder for "${req.filename}"`)], event: { type: 'searched', filename: req.filename, from, found: false } };
        }
        return { replies: [encodeHolder('S', holder)], event: { type: 'searched', filename: req.filename, from, found: true } };
      }
      case 'list':
        return list(datagram, from, now);
      case 'leave': {
        const holders = registry.leave(from);
        return { replies: [], event: holders.length > 0 ? { type: 'left', from, holders } : undefined };
      }
      case 'ignore':
        return NOTHING;
    }
  };

  function list(datagram: Uint8Array, from: string, now: number): HandleResult {
    if (listRate !== undefined && !listRate.take(from, 1, now)) return { replies: [], event: { type: 'limited', request: 'O', from, reason: 'over the O rate' } };
    const cookie = cookieOfList(datagram);
    const proof: ListProof | undefined =
      cookie !== undefined && cookies.verify(from, cookie, now) ? 'cookie' : registry.hasSource(from) ? 'registration' : maxListPdusUnproven === Infinity ? 'open' : undefined;
    const replies = listAtMost(proof ? atOnce : maxListPdusUnproven, now);
    if (replies) return { replies, event: { type: 'listed', from, pdus: replies.length } };
    if (proof) return { replies: [], event: { type: 'streaming', from, proof }, stream: true };
    return refuse('O', from, ErrorCode.Busy, `over ${maxListPdusUnproven} PDUs for an address with no registration: prove with cookie ${cookies.issue(from, now)}`);
  }

  /** The whole O sequence if it takes at most `limit` PDUs (work bounded by that), else undefined. */
  function listAtMost(limit: number, now: number): Buffer[] | undefined {
    // A packet holds at most 4 names: more registrations than 4 per PDU cannot fit (counting
    // those expired but not yet swept too, so a huge registry is never walked here).
    if (registry.size > 4 * limit) return undefined;
    const body: Buffer[] = [];
    let servers = 0;
    for (const server of registry.servers(now)) {
      const packets = packListNames(server.names);
      if (2 + body.length + packets.length > limit) return undefined;
      servers++;
      body.push(encodeListServer(server.addr, server.port, packets.length));
      packets.forEach((names, id) => body.push(encodeListPacket(id, names)));
    }
    return [encodeListCount(servers), ...body];
  }
}

/** Strips the request kind so the registry stores a plain holder. */
const toHolder = (h: Holder): Holder => ({ port: h.port, addr: h.addr, filename: h.filename, sha256: h.sha256 });
