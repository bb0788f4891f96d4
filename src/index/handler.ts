/**
 * The index's request handler: one datagram in, the reply datagrams and one event out.
 * Pure apart from mutating the registry store it is given; the clock is a parameter.
 *
 * Checks run in PROTOCOL.md's order: well-formed (E 4), exists (E 3), permitted (E 5).
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
import type { RegistryStore } from './store.js';

export type IndexEvent =
  | { type: 'registered'; holder: Holder; from: string }
  | { type: 'refreshed'; holder: Holder; from: string }
  | { type: 'deregistered'; holder: Holder; from: string }
  | { type: 'left'; from: string; holders: Holder[] }
  | { type: 'searched'; filename: string; from: string; found: boolean }
  | { type: 'listed'; from: string; pdus: number }
  | { type: 'refused'; request: string; from: string; code: number; reason: string }
  | { type: 'dropped'; from: string; bytes: number };

export interface HandleResult {
  replies: Buffer[];
  event: IndexEvent | undefined;
}

export interface IndexHandlerOptions {
  registry: RegistryStore;
  /** Accept an R whose addr names another host (off by default: PROTOCOL.md, E 5). */
  trustClaimedAddresses?: boolean;
  /**
   * Most PDUs one O may send to an address that holds no registration. A 100-byte O must not
   * turn into megabytes towards a spoofed victim; a bigger listing gets E 6 instead.
   */
  maxListPdusUnproven?: number;
}

export type IndexHandler = (datagram: Uint8Array, from: string, now: number) => HandleResult;

const NOTHING: HandleResult = { replies: [], event: undefined };

export function createIndexHandler(options: IndexHandlerOptions): IndexHandler {
  const { registry } = options;
  const trust = options.trustClaimedAddresses ?? false;
  const maxListPdusUnproven = options.maxListPdusUnproven ?? 64;

  const refuse = (request: string, from: string, code: number, reason: string): HandleResult => ({
    replies: [encodeError(code, reason)],
    event: { type: 'refused', request, from, code, reason },
  });

  return (datagram, from, now) => {
    const req = decodeIndexRequest(datagram, from);
    if (req === undefined) return { replies: [], event: { type: 'dropped', from, bytes: datagram.length } };
    switch (req.kind) {
      case 'malformed':
        return refuse(String.fromCharCode(datagram[0]!), from, ErrorCode.Malformed, req.reason);
      case 'register': {
        if (req.addr !== from && !trust) {
          return refuse('R', from, ErrorCode.NotPermitted, `address ${req.addr} is not the sender's (${from})`);
        }
        const holder = toHolder(req);
        const outcome = registry.register(holder, from, now);
        if (outcome === 'full') return refuse('R', from, ErrorCode.Busy, 'index is full, try again later');
        if (outcome === 'source-full') return refuse('R', from, ErrorCode.Busy, 'too many registrations from this address');
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
        return list(from, now);
      case 'leave': {
        const holders = registry.leave(from);
        return { replies: [], event: holders.length > 0 ? { type: 'left', from, holders } : undefined };
      }
      case 'ignore':
        return NOTHING;
    }
  };

  function list(from: string, now: number): HandleResult {
    const replies: Buffer[] = [];
    const servers = [...registry.servers(now)];
    replies.push(encodeListCount(servers.length));
    const limit = registry.hasSource(from) ? Infinity : maxListPdusUnproven;
    for (const server of servers) {
      const packets = packListNames(server.names);
      if (replies.length + 1 + packets.length > limit) {
        return refuse('O', from, ErrorCode.Busy, `listing is over ${limit} PDUs; only sent to an address with a registration`);
      }
      replies.push(encodeListServer(server.addr, server.port, packets.length));
      packets.forEach((names, id) => replies.push(encodeListPacket(id, names)));
    }
    return { replies, event: { type: 'listed', from, pdus: replies.length } };
  }
}

/** Strips the request kind so the registry stores a plain holder. */
const toHolder = (h: Holder): Holder => ({ port: h.port, addr: h.addr, filename: h.filename, sha256: h.sha256 });
