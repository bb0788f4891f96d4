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

export class ListAssembler {
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

  add(fields: readonly string[]): void {
    if (fields.length === 1) {
      const n = parseCount(fields[0]!);
      if (n !== undefined) this.#numServers = n;
      this.#open = undefined;
      return;
    }
    if (fields.length === 3 && isAddress(fields[0]!)) {
      this.#openGroup(fields);
      return;
    }
    const open = this.#open;
    const id = parseCount(fields[0]!);
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
