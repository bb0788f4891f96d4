/**
 * The registry as Redis holds it, read in one MULTI together with the stream position it
 * corresponds to; loaded into a store when an index starts, and compared with it when an
 * index fell behind the stream and reloads.
 */
import type { Redis } from 'ioredis';
import { fieldOf, parseRegistration, type Keys } from './redis-changes.js';
import type { RegistryStore } from './store.js';

export interface Snapshot {
  /** Sequence number of the last stream entry (0: none yet). */
  seq: number;
  /** `addr;port;filename` -> `from;expiresAt;sha256` */
  regs: Record<string, string>;
}

export async function takeSnapshot(redis: Redis, [regs, , seq]: Keys): Promise<Snapshot> {
  // One MULTI: the registrations and the stream position they correspond to, nothing between.
  const results = await redis.multi().get(seq).hgetall(regs).exec();
  const failed = results?.find(([err]) => err)?.[0];
  if (!results || failed) throw failed ?? new Error('MULTI was aborted');
  return {
    seq: Number(results[0]?.[1] ?? 0),
    regs: (results[1]?.[1] ?? {}) as Record<string, string>,
  };
}

/** Applies every live registration of the snapshot; returns how many. */
export function loadSnapshot(store: RegistryStore, snapshot: Snapshot, now: number): number {
  let loaded = 0;
  for (const [field, value] of Object.entries(snapshot.regs)) {
    const entry = parseRegistration(field, value);
    if (entry.expiresAt <= now) continue;
    store.apply({ kind: 'added', ...entry, origin: 'replicated' });
    loaded++;
  }
  return loaded;
}

/**
 * Brings the store to the snapshot: loads what it holds (a later expiry held here is kept) and
 * drops what it lacks (removed at another index while this one was not reading), except the
 * registrations in `unsent` (changed here, not yet in Redis). Without `unsent` (a write-back
 * is due, which will carry this index's registrations), nothing is dropped.
 */
export function reconcile(store: RegistryStore, snapshot: Snapshot, now: number, unsent: Set<string> | undefined): { loaded: number; dropped: number } {
  const gone = [];
  if (unsent) {
    for (const e of store.entries(now)) {
      const field = fieldOf(e.holder);
      if (snapshot.regs[field] === undefined && !unsent.has(field)) gone.push(e);
    }
  }
  for (const e of gone) store.apply({ kind: 'removed', ...e, origin: 'replicated' });
  return { loaded: loadSnapshot(store, snapshot, now), dropped: gone.length };
}
