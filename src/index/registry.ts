/**
 * The index's registrations: pure state, no sockets or timers (time is passed in).
 *
 * Built for a million registrations: each one is a slot in parallel typed arrays, linked into
 * the lists of its name, its server and its source (registry-slots.ts). Strings are interned
 * once per name, server and source. A registration costs about 80 bytes of arrays plus its
 * share of the interned strings, instead of several hundred for an object per entry.
 */
import { InternTable } from './intern-table.js';
import { PrefixCounts } from './prefix-counts.js';
import { NONE, RegistrySlots } from './registry-slots.js';
import type { Holder } from '../protocol/index-messages.js';
import {
  ChangeFeed,
  type ChangeKind,
  type ChangeListener,
  type ChangeOrigin,
  type DeregisterOutcome,
  type RegisterOutcome,
  type RegistryLimits,
  type RegistryStore,
  type ServerListing,
  type StoreChange,
  type StoreEntry,
} from './store.js';
import { RemovalMemory } from './removal-memory.js';

/** A registration's key as Redis keeps it: `addr;port;filename`. */
const fieldOf = (h: Holder): string => `${h.addr};${h.port};${h.filename}`;

export type { DeregisterOutcome, RegisterOutcome, RegistryLimits, ServerListing } from './store.js';

/**
 * A copy of `text` that holds only its own characters. A string cut from a longer one (split,
 * slice) can keep that whole string alive, and a joined one is a tree of parts; the registry
 * keeps its strings as long as they are registered, so it stores flat copies: about 40 bytes
 * for a 17-byte name, where the name split from its R datagram kept some 130 bytes alive.
 */
const ownCopy = (text: string): string => JSON.parse(JSON.stringify(text)) as string;

/** The in-memory store: every other store is built on it. */
export class Registry implements RegistryStore {
  readonly #ttlMs: number;
  readonly #limits: RegistryLimits;

  readonly #names = new InternTable<string>({ copyKey: ownCopy });
  readonly #servers = new InternTable<string>({ copyKey: ownCopy }); // key `addr;port`
  readonly #sources = new InternTable<string>({ copyKey: ownCopy });
  readonly #prefixes = new PrefixCounts();
  #serverAddr: string[] = [];
  #serverPort: number[] = [];
  readonly #s = new RegistrySlots(1024);
  #count = 0;
  readonly #feed = new ChangeFeed();

  /** Set for a replicated registry (see removal-memory.ts); off for a lone index. */
  readonly #removals: RemovalMemory | undefined;

  constructor(options: { ttlMs: number; rememberRemovals?: boolean } & Partial<RegistryLimits>) {
    this.#ttlMs = options.ttlMs;
    this.#removals = options.rememberRemovals ? new RemovalMemory(options.ttlMs) : undefined;
    this.#limits = {
      maxRegistrations: options.maxRegistrations ?? 2_000_000,
      maxPerSource: options.maxPerSource ?? 10_000,
      maxPerPrefix: options.maxPerPrefix ?? 50_000,
    };
  }

  /** Live and not yet swept registrations. */
  get size(): number {
    return this.#count;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /**
   * Adds a registration or refreshes it (R is idempotent). `from` is the datagram's source.
   * `refreshOnly`: the source is over its rate, so only a refresh is done ('rate-limited').
   */
  register(h: Holder, from: string, now: number, refreshOnly = false): RegisterOutcome {
    let found = this.#find(h);
    if (found !== NONE && this.#s.expiresAt[found] <= now) {
      // Past its TTL it no longer exists: start afresh (no stale digest, the new source).
      this.#remove(found, 'expired', 'local');
      found = NONE;
    }
    if (found !== NONE) {
      this.#s.expiresAt[found] = now + this.#ttlMs;
      if (h.sha256) this.#s.digests.set(found, h.sha256);
      if (this.#feed.active) this.#emit('refreshed', found, 'local');
      return 'refreshed';
    }
    if (refreshOnly) return 'rate-limited';
    if (this.#count >= this.#limits.maxRegistrations) return 'full';
    const sourceId = this.#sources.idOf(from);
    if (sourceId !== undefined && this.#sources.refs(sourceId) >= this.#limits.maxPerSource) return 'source-full';
    if (this.#prefixes.count(from, sourceId) >= this.#limits.maxPerPrefix) return 'prefix-full';
    this.#insert(h, from, now + this.#ttlMs, 'local');
    return 'added';
  }

  /** Removes a registration, if it is live and was made from `from`. */
  deregister(h: Holder, from: string, now: number): DeregisterOutcome {
    const slot = this.#find(h);
    if (slot === NONE || this.#s.expiresAt[slot] <= now) return 'missing';
    if (this.#sources.keyOf(this.#s.source[slot]) !== from) return 'forbidden';
    this.#remove(slot, 'removed', 'local');
    return 'removed';
  }

  /** The next live holder of `filename` in round-robin order, or undefined. */
  nextHolder(filename: string, now: number): Holder | undefined {
    const nameId = this.#names.idOf(filename);
    if (nameId === undefined) return undefined;
    for (;;) {
      let slot = this.#s.nameCursor[nameId];
      if (slot === NONE) slot = this.#s.nameHead[nameId]!;
      if (slot === NONE) return undefined;
      const next = this.#s.nextByName[slot];
      if (this.#s.expiresAt[slot] <= now) {
        // Moves the cursor on; when it was the last holder the head becomes NONE and we stop.
        this.#remove(slot, 'expired', 'local');
        continue;
      }
      this.#s.nameCursor[nameId] = next;
      return this.#holderAt(slot);
    }
  }

  /** Drops every registration made from `from` ("I am leaving"); returns them. */
  leave(from: string): Holder[] {
    const srcId = this.#sources.idOf(from);
    if (srcId === undefined) return [];
    const removed: Holder[] = [];
    for (let slot = this.#s.sourceHead[srcId]; slot !== NONE;) {
      const next = this.#s.nextBySource[slot];
      removed.push(this.#holderAt(slot));
      this.#remove(slot, 'left', 'local');
      slot = next;
    }
    return removed;
  }

  /** Removes registrations whose TTL has passed; calls `onExpired` for each. */
  expire(now: number, onExpired?: (h: Holder) => void): number {
    this.#removals?.sweep(now);
    let removed = 0;
    for (let slot = 0; slot < this.#s.highWater; slot++) {
      if (this.#s.name[slot] === NONE || this.#s.expiresAt[slot] > now) continue;
      onExpired?.(this.#holderAt(slot));
      this.#remove(slot, 'expired', 'local');
      removed++;
    }
    return removed;
  }

  /** Live registrations grouped by server, in the order the servers first registered. */
  *servers(now: number): Generator<ServerListing> {
    for (const [, serverId] of this.#servers.entries()) {
      const names: string[] = [];
      for (let slot = this.#s.serverHead[serverId]; slot !== NONE; slot = this.#s.nextByServer[slot]!) {
        if (this.#s.expiresAt[slot] > now) names.push(this.#names.keyOf(this.#s.name[slot]));
      }
      if (names.length > 0) yield { addr: this.#serverAddr[serverId], port: this.#serverPort[serverId], names: names.reverse() };
    }
  }

  /** Counts the servers `servers(now)` lists, yielding after every `chunk` of servers looked at. */
  *countServers(now: number, chunk: number): Generator<void, number> {
    let count = 0;
    let looked = 0;
    for (const [, serverId] of this.#servers.entries()) {
      for (let slot = this.#s.serverHead[serverId]; slot !== NONE; slot = this.#s.nextByServer[slot]!) {
        if (this.#s.expiresAt[slot] > now) {
          count++;
          break;
        }
      }
      if (++looked % chunk === 0) yield;
    }
    return count;
  }

  /** Whether any live registration was made from `from` (the address has proven itself). */
  hasSource(from: string): boolean {
    return this.#sources.idOf(from) !== undefined;
  }

  *entries(now: number): Generator<StoreEntry> {
    for (let slot = 0; slot < this.#s.highWater; slot++) {
      if (this.#s.name[slot] === NONE || this.#s.expiresAt[slot] <= now) continue;
      yield { holder: this.#holderAt(slot), from: this.#sources.keyOf(this.#s.source[slot]), expiresAt: this.#s.expiresAt[slot] };
    }
  }

  apply(change: StoreChange): void {
    const { holder, from, expiresAt } = change;
    // A write-back older than a removal seen here does not bring the registration back.
    if ((change.kind === 'added' || change.kind === 'refreshed') && this.#removals?.isStale(fieldOf(holder), expiresAt)) return;
    const slot = this.#find(holder);
    if (change.kind !== 'added' && change.kind !== 'refreshed') {
      // Only what that index removed: not a registration made since from elsewhere or refreshed.
      const same = slot !== NONE && this.#sources.keyOf(this.#s.source[slot]) === from;
      if (same && (change.kind !== 'expired' || this.#s.expiresAt[slot] <= expiresAt)) this.#remove(slot, change.kind, 'replicated');
      return;
    }
    if (slot === NONE) {
      this.#insert(holder, from, expiresAt, 'replicated');
    } else if (expiresAt >= this.#s.expiresAt[slot]) {
      if (this.#sources.keyOf(this.#s.source[slot]) !== from) {
        this.#remove(slot, 'removed', 'replicated');
        this.#insert(holder, from, expiresAt, 'replicated');
        return;
      }
      this.#s.expiresAt[slot] = expiresAt;
      if (holder.sha256) this.#s.digests.set(slot, holder.sha256);
      if (this.#feed.active) this.#emit('refreshed', slot, 'replicated');
    }
  }

  onChange(listener: ChangeListener): () => void {
    return this.#feed.subscribe(listener);
  }

  // ---- internals ----------------------------------------------------------------------

  /** The slot of (addr, port, filename), walking the shorter of its name's and server's lists. */
  #find(h: Holder): number {
    const nameId = this.#names.idOf(h.filename);
    if (nameId === undefined) return NONE;
    const serverId = this.#servers.idOf(`${h.addr};${h.port}`);
    if (serverId === undefined) return NONE;
    if (this.#names.refs(nameId) <= this.#servers.refs(serverId)) {
      for (let s = this.#s.nameHead[nameId]; s !== NONE; s = this.#s.nextByName[s]!) if (this.#s.server[s] === serverId) return s;
    } else {
      for (let s = this.#s.serverHead[serverId]; s !== NONE; s = this.#s.nextByServer[s]!) if (this.#s.name[s] === nameId) return s;
    }
    return NONE;
  }

  #holderAt(slot: number): Holder {
    const serverId = this.#s.server[slot];
    return {
      port: this.#serverPort[serverId],
      addr: this.#serverAddr[serverId],
      filename: this.#names.keyOf(this.#s.name[slot]),
      sha256: this.#s.digests.get(slot),
    };
  }

  /** A new registration; no caps (the callers check them where they apply). */
  #insert(h: Holder, from: string, expiresAt: number, origin: ChangeOrigin): void {
    const nameId = this.#names.acquire(h.filename);
    const serverId = this.#servers.acquire(`${h.addr};${h.port}`);
    const srcId = this.#sources.acquire(from);
    this.#prefixes.add(srcId, from);
    this.#s.ensureHeads(this.#names.capacity, this.#servers.capacity, this.#sources.capacity);
    if (this.#servers.refs(serverId) === 1) {
      // A new server (the same addr and port as before otherwise): keep its own copy of addr.
      this.#serverAddr[serverId] = ownCopy(h.addr);
      this.#serverPort[serverId] = h.port;
    }
    const slot = this.#s.fill(nameId, serverId, srcId, expiresAt);
    if (h.sha256) this.#s.digests.set(slot, h.sha256);
    this.#count++;
    if (this.#feed.active) this.#emit('added', slot, origin);
  }

  #emit(kind: ChangeKind, slot: number, origin: ChangeOrigin): void {
    const from = this.#sources.keyOf(this.#s.source[slot]);
    this.#feed.emit({ kind, holder: this.#holderAt(slot), from, expiresAt: this.#s.expiresAt[slot], origin });
  }

  #remove(slot: number, kind: ChangeKind, origin: ChangeOrigin): void {
    if (this.#feed.active) this.#emit(kind, slot, origin);
    if (this.#removals && kind !== 'expired') this.#removals.noteRemoved(fieldOf(this.#holderAt(slot)), Date.now(), origin === 'local');
    const nameId = this.#s.name[slot];
    const serverId = this.#s.server[slot];
    const srcId = this.#s.source[slot];
    this.#s.free(slot);
    if (this.#names.release(nameId)) this.#s.nameCursor[nameId] = NONE;
    if (this.#servers.release(serverId)) this.#serverAddr[serverId] = '';
    this.#prefixes.remove(srcId, this.#sources.release(srcId));
    this.#count--;
  }
}
