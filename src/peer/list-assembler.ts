/**
 * Reassembles the O sequence (PROTOCOL.md, "The O sequence"):
 *
 *   O num_servers
 *   O addr;port;num_packets          once per server, then
 *   O packet_id;name[;name...]       num_packets times, ids 0..num_packets-1
 *
 * Packets do not name their server: a packet belongs to the server header received before
 * it. A server counts as received once its header and every packet id 0..n-1 have arrived
 * with no other header between them (in any order, so one datagram overtaking another does
 * not spoil the group). A repeated datagram is ignored. Complete servers are kept across
 * attempts: on a lossy network each re-asked O fills in the servers the earlier ones missed.
 */
import { isAddress, parseCount, parsePort } from '../protocol/fields.js';

export interface ServerListing {
  addr: string;
  port: number;
  names: string[];
}

interface OpenGroup {
  addr: string;
  port: number;
  expected: number;
  packets: Map<number, string[]>;
}

export class ListAssembler {
  #numServers: number | undefined;
  readonly #complete = new Map<string, ServerListing>();
  #open: OpenGroup | undefined;
  #completedThisAttempt = 0;

  /**
   * A new O is being sent. Returns whether the previous attempt completed a server not seen
   * complete before, i.e. whether it made progress (the caller does not count such an attempt as a failed try).
   */
  startAttempt(): boolean {
    const progressed = this.#completedThisAttempt > 0;
    this.#open = undefined;
    this.#completedThisAttempt = 0;
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
      this.#open = undefined; // a stray packet: this group cannot be trusted
      return;
    }
    const names = fields.slice(1);
    const seen = open.packets.get(id);
    if (seen) {
      // A duplicate is harmless; two different packets with one id mean a mix-up.
      if (seen.join(';') !== names.join(';')) this.#open = undefined;
      return;
    }
    open.packets.set(id, names);
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
    const key = `${addr};${port}`;
    // The same header again (a duplicate datagram) keeps the packets gathered so far.
    if (this.#open && `${this.#open.addr};${this.#open.port}` === key && this.#open.expected === expected) return;
    this.#open = port !== undefined && expected !== undefined && expected > 0 ? { addr, port, expected, packets: new Map() } : undefined;
  }

  #close(group: OpenGroup): void {
    const names: string[] = [];
    for (let id = 0; id < group.expected; id++) names.push(...group.packets.get(id)!);
    const key = `${group.addr};${group.port}`;
    if (!this.#complete.has(key)) this.#completedThisAttempt++; // only new servers are progress
    this.#complete.set(key, { addr: group.addr, port: group.port, names });
    this.#open = undefined;
  }
}
