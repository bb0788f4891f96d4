/**
 * The index's registrations: pure state, no sockets or timers (time is passed in).
 *
 * Built for a million registrations: each one is a slot in parallel typed arrays (struct of
 * arrays), linked into three intrusive doubly-linked lists: the holders of one name, the names
 * of one server (addr, port) and the registrations made from one source address. Strings are
 * interned once per name, server and source. A registration costs about 80 bytes of arrays
 * plus its share of the interned strings, instead of several hundred for an object per entry.
 */
import { DigestSlab } from './digest-slab.js';
import { InternTable } from './intern-table.js';
import { PrefixCounts } from './prefix-counts.js';
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

export type { DeregisterOutcome, RegisterOutcome, RegistryLimits, ServerListing } from './store.js';

const NONE = -1;
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

  // Per-list heads, indexed by the interned id.
  #nameHead = new Int32Array(0);
  #nameCursor = new Int32Array(0); // round-robin position: the slot S hands out next
  #serverHead = new Int32Array(0);
  #sourceHead = new Int32Array(0);

  // Per-registration slots.
  #capacity = 0;
  #count = 0;
  #freeSlots: number[] = [];
  #highWater = 0;
  #regName = new Int32Array(0);
  #regServer = new Int32Array(0);
  #regSource = new Int32Array(0);
  #nextByName = new Int32Array(0);
  #prevByName = new Int32Array(0);
  #nextByServer = new Int32Array(0);
  #prevByServer = new Int32Array(0);
  #nextBySource = new Int32Array(0);
  #prevBySource = new Int32Array(0);
  #expiresAt = new Float64Array(0);
  readonly #digests = new DigestSlab();
  readonly #feed = new ChangeFeed();

  constructor(options: { ttlMs: number } & Partial<RegistryLimits>) {
    this.#ttlMs = options.ttlMs;
    this.#limits = {
      maxRegistrations: options.maxRegistrations ?? 2_000_000,
      maxPerSource: options.maxPerSource ?? 10_000,
      maxPerPrefix: options.maxPerPrefix ?? 50_000,
    };
    this.#growSlots(1024);
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
    if (found !== NONE && this.#expiresAt[found]! <= now) {
      // Past its TTL it no longer exists: start afresh (no stale digest, the new source).
      this.#remove(found, 'expired', 'local');
      found = NONE;
    }
    if (found !== NONE) {
      this.#expiresAt[found] = now + this.#ttlMs;
      if (h.sha256) this.#digests.set(found, h.sha256);
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
    if (slot === NONE || this.#expiresAt[slot]! <= now) return 'missing';
    if (this.#sources.keyOf(this.#regSource[slot]!) !== from) return 'forbidden';
    this.#remove(slot, 'removed', 'local');
    return 'removed';
  }

  /** The next live holder of `filename` in round-robin order, or undefined. */
  nextHolder(filename: string, now: number): Holder | undefined {
    const nameId = this.#names.idOf(filename);
    if (nameId === undefined) return undefined;
    for (;;) {
      let slot = this.#nameCursor[nameId]!;
      if (slot === NONE) slot = this.#nameHead[nameId]!;
      if (slot === NONE) return undefined;
      const next = this.#nextByName[slot]!;
      if (this.#expiresAt[slot]! <= now) {
        // Moves the cursor on; when it was the last holder the head becomes NONE and we stop.
        this.#remove(slot, 'expired', 'local');
        continue;
      }
      this.#nameCursor[nameId] = next;
      return this.#holderAt(slot);
    }
  }

  /** Drops every registration made from `from` ("I am leaving"); returns them. */
  leave(from: string): Holder[] {
    const srcId = this.#sources.idOf(from);
    if (srcId === undefined) return [];
    const removed: Holder[] = [];
    for (let slot = this.#sourceHead[srcId]!; slot !== NONE; ) {
      const next = this.#nextBySource[slot]!;
      removed.push(this.#holderAt(slot));
      this.#remove(slot, 'left', 'local');
      slot = next;
    }
    return removed;
  }

  /** Removes registrations whose TTL has passed; calls `onExpired` for each. */
  expire(now: number, onExpired?: (h: Holder) => void): number {
    let removed = 0;
    for (let slot = 0; slot < this.#highWater; slot++) {
      if (this.#regName[slot] === NONE || this.#expiresAt[slot]! > now) continue;
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
      for (let slot = this.#serverHead[serverId]!; slot !== NONE; slot = this.#nextByServer[slot]!) {
        if (this.#expiresAt[slot]! > now) names.push(this.#names.keyOf(this.#regName[slot]!));
      }
      if (names.length > 0) yield { addr: this.#serverAddr[serverId]!, port: this.#serverPort[serverId]!, names: names.reverse() };
    }
  }

  /** Counts the servers `servers(now)` lists, yielding after every `chunk` of servers looked at. */
  *countServers(now: number, chunk: number): Generator<void, number> {
    let count = 0;
    let looked = 0;
    for (const [, serverId] of this.#servers.entries()) {
      for (let slot = this.#serverHead[serverId]!; slot !== NONE; slot = this.#nextByServer[slot]!) {
        if (this.#expiresAt[slot]! > now) {
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
    for (let slot = 0; slot < this.#highWater; slot++) {
      if (this.#regName[slot] === NONE || this.#expiresAt[slot]! <= now) continue;
      yield { holder: this.#holderAt(slot), from: this.#sources.keyOf(this.#regSource[slot]!), expiresAt: this.#expiresAt[slot]! };
    }
  }

  apply(change: StoreChange): void {
    const { holder, from, expiresAt } = change;
    const slot = this.#find(holder);
    if (change.kind !== 'added' && change.kind !== 'refreshed') {
      // Only what that index removed: not a registration made since from elsewhere or refreshed.
      const same = slot !== NONE && this.#sources.keyOf(this.#regSource[slot]!) === from;
      if (same && (change.kind !== 'expired' || this.#expiresAt[slot]! <= expiresAt)) this.#remove(slot, change.kind, 'replicated');
      return;
    }
    if (slot === NONE) {
      this.#insert(holder, from, expiresAt, 'replicated');
    } else if (expiresAt >= this.#expiresAt[slot]!) {
      if (this.#sources.keyOf(this.#regSource[slot]!) !== from) {
        this.#remove(slot, 'removed', 'replicated');
        this.#insert(holder, from, expiresAt, 'replicated');
        return;
      }
      this.#expiresAt[slot] = expiresAt;
      if (holder.sha256) this.#digests.set(slot, holder.sha256);
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
      for (let s = this.#nameHead[nameId]!; s !== NONE; s = this.#nextByName[s]!) if (this.#regServer[s] === serverId) return s;
    } else {
      for (let s = this.#serverHead[serverId]!; s !== NONE; s = this.#nextByServer[s]!) if (this.#regName[s] === nameId) return s;
    }
    return NONE;
  }

  #holderAt(slot: number): Holder {
    const serverId = this.#regServer[slot]!;
    return {
      port: this.#serverPort[serverId]!,
      addr: this.#serverAddr[serverId]!,
      filename: this.#names.keyOf(this.#regName[slot]!),
      sha256: this.#digests.get(slot),
    };
  }

  /** A new registration; no caps (the callers check them where they apply). */
  #insert(h: Holder, from: string, expiresAt: number, origin: ChangeOrigin): void {
    const slot = this.#allocSlot();
    const nameId = this.#names.acquire(h.filename);
    const serverId = this.#servers.acquire(`${h.addr};${h.port}`);
    const srcId = this.#sources.acquire(from);
    this.#prefixes.add(srcId, from);
    this.#ensureHeads();
    if (this.#servers.refs(serverId) === 1) {
      // A new server (the same addr and port as before otherwise): keep its own copy of addr.
      this.#serverAddr[serverId] = ownCopy(h.addr);
      this.#serverPort[serverId] = h.port;
    }

    this.#regName[slot] = nameId;
    this.#regServer[slot] = serverId;
    this.#regSource[slot] = srcId;
    this.#expiresAt[slot] = expiresAt;
    this.#digests.clear(slot);
    if (h.sha256) this.#digests.set(slot, h.sha256);
    this.#link(this.#nameHead, this.#nextByName, this.#prevByName, nameId, slot);
    this.#link(this.#serverHead, this.#nextByServer, this.#prevByServer, serverId, slot);
    this.#link(this.#sourceHead, this.#nextBySource, this.#prevBySource, srcId, slot);
    this.#count++;
    if (this.#feed.active) this.#emit('added', slot, origin);
  }

  #emit(kind: ChangeKind, slot: number, origin: ChangeOrigin): void {
    const from = this.#sources.keyOf(this.#regSource[slot]!);
    this.#feed.emit({ kind, holder: this.#holderAt(slot), from, expiresAt: this.#expiresAt[slot]!, origin });
  }

  #remove(slot: number, kind: ChangeKind, origin: ChangeOrigin): void {
    if (this.#feed.active) this.#emit(kind, slot, origin);
    const nameId = this.#regName[slot]!;
    const serverId = this.#regServer[slot]!;
    const srcId = this.#regSource[slot]!;
    if (this.#nameCursor[nameId] === slot) this.#nameCursor[nameId] = this.#nextByName[slot]!;
    this.#unlink(this.#nameHead, this.#nextByName, this.#prevByName, nameId, slot);
    this.#unlink(this.#serverHead, this.#nextByServer, this.#prevByServer, serverId, slot);
    this.#unlink(this.#sourceHead, this.#nextBySource, this.#prevBySource, srcId, slot);
    if (this.#names.release(nameId)) this.#nameCursor[nameId] = NONE;
    if (this.#servers.release(serverId)) this.#serverAddr[serverId] = '';
    this.#prefixes.remove(srcId, this.#sources.release(srcId));
    this.#regName[slot] = NONE;
    this.#freeSlots.push(slot);
    this.#count--;
  }

  #link(heads: Int32Array, next: Int32Array, prev: Int32Array, list: number, slot: number): void {
    const head = heads[list]!;
    next[slot] = head;
    prev[slot] = NONE;
    if (head !== NONE) prev[head] = slot;
    heads[list] = slot;
  }

  #unlink(heads: Int32Array, next: Int32Array, prev: Int32Array, list: number, slot: number): void {
    const p = prev[slot]!;
    const n = next[slot]!;
    if (p === NONE) heads[list] = n;
    else next[p] = n;
    if (n !== NONE) prev[n] = p;
  }

  #allocSlot(): number {
    const reused = this.#freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.#highWater === this.#capacity) this.#growSlots(this.#capacity * 2);
    return this.#highWater++;
  }

  #growSlots(capacity: number): void {
    const grow = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T, fill?: number): T => {
      const next = make(capacity);
      if (fill !== undefined) next.fill(fill);
      next.set(old);
      return next;
    };
    const i32 = (n: number) => new Int32Array(n);
    this.#regName = grow(this.#regName, i32, NONE);
    this.#regServer = grow(this.#regServer, i32);
    this.#regSource = grow(this.#regSource, i32);
    this.#nextByName = grow(this.#nextByName, i32);
    this.#prevByName = grow(this.#prevByName, i32);
    this.#nextByServer = grow(this.#nextByServer, i32);
    this.#prevByServer = grow(this.#prevByServer, i32);
    this.#nextBySource = grow(this.#nextBySource, i32);
    this.#prevBySource = grow(this.#prevBySource, i32);
    this.#expiresAt = grow(this.#expiresAt, (n) => new Float64Array(n));
    this.#digests.grow(capacity);
    this.#capacity = capacity;
  }

  /** Makes each list's head array cover every id of its own table. */
  #ensureHeads(): void {
    if (this.#nameHead.length < this.#names.capacity) {
      this.#nameHead = widen(this.#nameHead, this.#names.capacity);
      this.#nameCursor = widen(this.#nameCursor, this.#names.capacity);
    }
    if (this.#serverHead.length < this.#servers.capacity) this.#serverHead = widen(this.#serverHead, this.#servers.capacity);
    if (this.#sourceHead.length < this.#sources.capacity) this.#sourceHead = widen(this.#sourceHead, this.#sources.capacity);
  }
}

/** A copy of a head array with room for `need` ids (at least doubled), new entries NONE. */
function widen(old: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(Math.max(need, old.length * 2, 256)).fill(NONE);
  next.set(old);
  return next;
}
