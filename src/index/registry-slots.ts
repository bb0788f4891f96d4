/**
 * The registry's storage: one slot per registration in parallel typed arrays (struct of
 * arrays), linked into three intrusive doubly-linked lists: the holders of one name, the names
 * of one server (addr, port) and the registrations made from one source address. The heads of
 * the lists are indexed by the interned id of the name, server or source (registry.ts).
 *
 * Fields are public and plain so that the registry's hot paths read them directly.
 */
import { DigestSlab } from './digest-slab.js';

export const NONE = -1;

export class RegistrySlots {
  // Per-list heads, indexed by the interned id.
  nameHead = new Int32Array(0);
  nameCursor = new Int32Array(0); // round-robin position: the slot S hands out next
  serverHead = new Int32Array(0);
  sourceHead = new Int32Array(0);

  // Per-registration slots (`name` is NONE for a free slot).
  highWater = 0;
  name = new Int32Array(0);
  server = new Int32Array(0);
  source = new Int32Array(0);
  nextByName = new Int32Array(0);
  prevByName = new Int32Array(0);
  nextByServer = new Int32Array(0);
  prevByServer = new Int32Array(0);
  nextBySource = new Int32Array(0);
  prevBySource = new Int32Array(0);
  expiresAt = new Float64Array(0);
  readonly digests = new DigestSlab();
  #capacity = 0;
  #free: number[] = [];

  constructor(initialCapacity: number) {
    this.#grow(initialCapacity);
  }

  /** A slot holding (name, server, source), linked at the head of its three lists. */
  fill(nameId: number, serverId: number, sourceId: number, expiresAt: number): number {
    const slot = this.#alloc();
    this.name[slot] = nameId;
    this.server[slot] = serverId;
    this.source[slot] = sourceId;
    this.expiresAt[slot] = expiresAt;
    this.digests.clear(slot);
    link(this.nameHead, this.nextByName, this.prevByName, nameId, slot);
    link(this.serverHead, this.nextByServer, this.prevByServer, serverId, slot);
    link(this.sourceHead, this.nextBySource, this.prevBySource, sourceId, slot);
    return slot;
  }

  /** Unlinks a slot from its lists (moving its name's cursor past it) and frees it. */
  free(slot: number): void {
    const nameId = this.name[slot];
    if (this.nameCursor[nameId] === slot) this.nameCursor[nameId] = this.nextByName[slot]!;
    unlink(this.nameHead, this.nextByName, this.prevByName, nameId, slot);
    unlink(this.serverHead, this.nextByServer, this.prevByServer, this.server[slot], slot);
    unlink(this.sourceHead, this.nextBySource, this.prevBySource, this.source[slot], slot);
    this.name[slot] = NONE;
    this.#free.push(slot);
  }

  /** Makes each list's head array cover the ids of its table (capacities of the tables). */
  ensureHeads(names: number, servers: number, sources: number): void {
    if (this.nameHead.length < names) {
      this.nameHead = widen(this.nameHead, names);
      this.nameCursor = widen(this.nameCursor, names);
    }
    if (this.serverHead.length < servers) this.serverHead = widen(this.serverHead, servers);
    if (this.sourceHead.length < sources) this.sourceHead = widen(this.sourceHead, sources);
  }

  #alloc(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.highWater === this.#capacity) this.#grow(this.#capacity * 2);
    return this.highWater++;
  }

  #grow(capacity: number): void {
    const grow = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T, fill?: number): T => {
      const next = make(capacity);
      if (fill !== undefined) next.fill(fill);
      next.set(old);
      return next;
    };
    const i32 = (n: number) => new Int32Array(n);
    this.name = grow(this.name, i32, NONE);
    this.server = grow(this.server, i32);
    this.source = grow(this.source, i32);
    this.nextByName = grow(this.nextByName, i32);
    this.prevByName = grow(this.prevByName, i32);
    this.nextByServer = grow(this.nextByServer, i32);
    this.prevByServer = grow(this.prevByServer, i32);
    this.nextBySource = grow(this.nextBySource, i32);
    this.prevBySource = grow(this.prevBySource, i32);
    this.expiresAt = grow(this.expiresAt, (n) => new Float64Array(n));
    this.digests.grow(capacity);
    this.#capacity = capacity;
  }
}

function link(heads: Int32Array, next: Int32Array, prev: Int32Array, list: number, slot: number): void {
  const head = heads[list];
  next[slot] = head;
  prev[slot] = NONE;
  if (head !== NONE) prev[head] = slot;
  heads[list] = slot;
}

function unlink(heads: Int32Array, next: Int32Array, prev: Int32Array, list: number, slot: number): void {
  const p = prev[slot];
  const n = next[slot];
  if (p === NONE) heads[list] = n;
  else next[p] = n;
  if (n !== NONE) prev[n] = p;
}

/** A copy of a head array with room for `need` ids (at least doubled), new entries NONE. */
function widen(old: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(Math.max(need, old.length * 2, 256)).fill(NONE);
  next.set(old);
  return next;
}
