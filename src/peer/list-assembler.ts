/**
 * Reassembles the O sequence (PROTOCOL.md, "The O sequence"):
 *
 *   O num_servers
 *   O addr;port;num_packets          once per server, then
 *   O packet_id;name[;name...]       num_packets times, ids 0..num_packets-1
 *
 * Packets do not name their server, so only a server whose header and every packet arrived
 * together, in order, counts as received. Complete servers are kept across attempts: on a
 * lossy network each re-asked O fills in the servers the earlier ones missed.
 */
import { isAddress, parseCount, parsePort } from '../protocol/fields.js';

export interface ServerListing {
  addr: string;
  port: number;
  names: string[];
}

interface OpenGroup {
  listing: ServerListing;
  expected: number;
  nextId: number;
}

export class ListAssembler {
  #numServers: number | undefined;
  readonly #complete = new Map<string, ServerListing>();
  #open: OpenGroup | undefined;

  /** A new O was sent: a group left open by the last attempt can no longer complete. */
  startAttempt(): void {
    this.#open = undefined;
  }

  add(fields: readonly string[]): void {
    if (fields.length === 1) {
      const n = parseCount(fields[0]!);
      if (n !== undefined) this.#numServers = n;
      this.#open = undefined;
      return;
    }
    if (fields.length === 3 && isAddress(fields[0]!)) {
      const port = parsePort(fields[1]!);
      const expected = parseCount(fields[2]!);
      this.#open = port !== undefined && expected !== undefined && expected > 0 ? { listing: { addr: fields[0]!, port, names: [] }, expected, nextId: 0 } : undefined;
      return;
    }
    const open = this.#open;
    const id = parseCount(fields[0]!);
    if (!open || id !== open.nextId) {
      this.#open = undefined; // a gap or a stray packet: this group cannot be trusted
      return;
    }
    open.listing.names.push(...fields.slice(1));
    open.nextId++;
    if (open.nextId === open.expected) {
      this.#complete.set(`${open.listing.addr};${open.listing.port}`, open.listing);
      this.#open = undefined;
    }
  }

  /** The listing once the count and that many servers are in; otherwise undefined. */
  result(): ServerListing[] | undefined {
    if (this.#numServers === undefined || this.#complete.size < this.#numServers) return undefined;
    return [...this.#complete.values()];
  }
}
