/**
 * Reassembles the O sequence (PROTOCOL.md, "The O sequence"):
 *
 *   O num_servers
 *   O addr;port;num_packets          once per server, then
 *   O packet_id;name[;name...]       num_packets times, ids 0..num_packets-1
 *
 * Packets do not name their server: a packet belongs to the server header received before
 * it in the same attempt, and within one answer its ids rise (a lower id, unless it merely
 * swapped places with its neighbour, means the next server's header was lost). Packets are gathered per server across attempts, so on a
 * lossy network each re-asked O fills in what earlier ones missed; a server is complete once
 * all of its packet ids are in. What the protocol cannot rule out: when a header and every
 * packet of the server before it are lost, the next server's first packet can be taken for
 * that earlier server's (a handful of consecutive losses; see docs/protocol.md).
 */
import { PeerdexError } from '../protocol/errors.js';
import { isAddress, parseCount, parsePort } from '../protocol/fields.js';

export interface ServerListing {
  addr: string;
  port: number;
  names: string[];
}

interface Group {
  addr: string;
  port: number;
  expected: number;
  packets: Map<number, string[]>;
}

export interface ListLimits {
  /**
   * Most servers an O sequence may announce (its count, or distinct headers seen). Default
   * 2,000,000: the index's default registration cap, and every server holds at least one.
   */
  maxServers?: number;
  /**
   * Most packets the servers of one listing may announce in all (so also per server). Each
   * packet carries at least one name, so this bounds the names too. Default 2,000,000, the
   * index's default registration cap.
   */
  maxNames?: number;
}

/**
 * The listing cookie an index put in an `E 6` (docs/protocol.md, "Proving an address"):
 * `... cookie 0123456789abcdef`; an `O` carrying it as data proves the client's address.
 */
export function listCookieIn(reply: { code: number; description: string }): string | undefined {
  return reply.code === 6 ? /\bcookie ([0-9a-f]{16})\b/.exec(reply.description)?.[1] : undefined;
}

/** Defaults of ListLimits, shared with the index client's options. */
export const LIST_LIMITS = { maxServers: 2_000_000, maxNames: 2_000_000 } as const;

export class ListAssembler {
  readonly #maxServers: number;
  readonly #maxNames: number;
  #numServers: number | undefined;
  readonly #complete = new Map<string, ServerListing>();
  /** Servers seen but not yet complete, by `addr;port`. */
  readonly #partial = new Map<string, Group>();
  /** The server whose packets are arriving now (its header was the last one received). */
  #open: Group | undefined;
  /** Highest packet id taken for #open in this attempt: ids only rise within one answer. */
  #lastId = -1;
  /** Packets (of servers not yet complete) first received in the current attempt. */
  #newThisAttempt = 0;
  /** Sum of the packet counts announced by the servers held (partial or complete). */
  #announcedPackets = 0;

  constructor(limits: ListLimits = {}) {
    this.#maxServers = limits.maxServers ?? LIST_LIMITS.maxServers;
    this.#maxNames = limits.maxNames ?? LIST_LIMITS.maxNames;
  }

  /**
   * A new O is being sent. Returns whether the previous attempt brought any packet not had
   * before, i.e. whether it made progress (the caller does not count such an attempt as a failed try).
   */
  startAttempt(): boolean {
    const progressed = this.#newThisAttempt > 0;
    this.#open = undefined;
    this.#newThisAttempt = 0;
    return progressed;
  }

  /**
   * Takes one O PDU's fields. Throws ERR_MALFORMED_PDU when the sequence announces more
   * servers or packets than the limits: such a listing cannot be held, so asking again is
   * pointless (a hostile or broken index could otherwise keep a client busy for hours).
   */
  add(fields: readonly string[]): void {
    if (fields.length === 1) {
      const n = parseCount(fields[0]);
      if (n !== undefined && n > this.#maxServers) throw tooMany(`${n} servers`, this.#maxServers);
      if (n !== undefined) this.#numServers = n;
      this.#open = undefined;
      return;
    }
    if (fields.length === 3 && isAddress(fields[0])) {
      this.#openGroup(fields);
      return;
    }
    const open = this.#open;
    const id = parseCount(fields[0]);
    if (!open || id === undefined || id >= open.expected) {
      this.#open = undefined; // another server's packet whose header was lost
      return;
    }
    const names = fields.slice(1);
    const seen = open.packets.get(id);
    if (seen) {
      // A duplicate is harmless; two different packets with one id mean the listing changed
      // between attempts (or a packet was misplaced): gather that server again from scratch.
      if (seen.join(';') !== names.join(';')) {
        this.#partial.delete(`${open.addr};${open.port}`);
        this.#announcedPackets -= open.expected;
        this.#open = undefined;
      }
      return;
    }
    // Ids rise within one answer. A new id below the last one is either a datagram that
    // swapped places with its neighbour (one behind: accepted) or the next server's packet
    // after its header was lost (this answer's group ends there).
    if (id <= this.#lastId && !(id > 0 && id === this.#lastId - 1)) {
      this.#open = undefined;
      return;
    }
    this.#lastId = Math.max(this.#lastId, id);
    open.packets.set(id, names);
    this.#newThisAttempt++;
    if (open.packets.size === open.expected) this.#close(open);
  }

  /** The listing once the count and that many servers are in; otherwise undefined. */
  result(): ServerListing[] | undefined {
    if (this.#numServers === undefined || this.#complete.size < this.#numServers) return undefined;
    return [...this.#complete.values()];
  }

  #openGroup(fields: readonly string[]): void {
    const [addr, portText, countText] = fields as [string, string, string];
    const port = parsePort(portText);
    const expected = parseCount(countText);
    this.#open = undefined;
    if (port === undefined || expected === undefined || expected === 0) return;
    const key = `${addr};${port}`;
    if (this.#complete.has(key)) return; // packets that follow are not needed
    let group = this.#partial.get(key);
    // A different packet count means the listing changed since: start that server again.
    if (!group || group.expected !== expected) {
      const packets = this.#announcedPackets - (group?.expected ?? 0) + expected;
      if (packets > this.#maxNames) throw tooMany(`${packets} packets of names`, this.#maxNames);
      const servers = this.#partial.size + this.#complete.size + (group ? 0 : 1);
      if (servers > this.#maxServers) throw tooMany(`${servers} servers`, this.#maxServers);
      this.#announcedPackets = packets;
      group = { addr, port, expected, packets: new Map() };
      this.#partial.set(key, group);
    }
    this.#open = group;
    this.#lastId = -1;
  }

  #close(group: Group): void {
    const names: string[] = [];
    for (let id = 0; id < group.expected; id++) names.push(...group.packets.get(id)!);
    const key = `${group.addr};${group.port}`;
    this.#partial.delete(key);
    this.#complete.set(key, { addr: group.addr, port: group.port, names });
    this.#open = undefined;
  }
}

const tooMany = (what: string, limit: number) => new PeerdexError('ERR_MALFORMED_PDU', `announced ${what} in its listing, over the limit of ${limit}`);
