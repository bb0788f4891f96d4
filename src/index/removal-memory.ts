/**
 * When each registration was last removed (a T, an E 1, or a removal replicated from another
 * index), kept for one TTL. For a replicated registry: after a Redis outage every index
 * writes its live registrations back, and another index's copy of one that was removed here
 * during the outage can arrive after the removal itself. A replicated registration last
 * refreshed (its expiry minus the TTL) before a removal seen here is stale and must not bring
 * the registration back. Indexes of one cluster are expected to share the TTL.
 */
/** How much earlier than seen here a removal replicated from another index may have been made. */
const REPLICATION_SLACK_MS = 1000;

export class RemovalMemory {
  readonly #ttlMs: number;
  readonly #removedAt = new Map<string, number>();

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  /**
   * A removal at `now`. One replicated from another index was made a little earlier than it
   * is seen here, and a registration made again right after it (refreshed after the removal,
   * but before `now`) must still count: so a replicated removal is dated REPLICATION_SLACK_MS
   * back. A write-back after an outage is older than that.
   */
  noteRemoved(field: string, now: number, local: boolean): void {
    this.#removedAt.set(field, local ? now : now - REPLICATION_SLACK_MS);
  }

  /** Whether a registration expiring at `expiresAt` was refreshed before its last removal. */
  isStale(field: string, expiresAt: number): boolean {
    const at = this.#removedAt.get(field);
    return at !== undefined && expiresAt - this.#ttlMs <= at;
  }

  /** Forgets removals older than one TTL (nothing older can still be written back). */
  sweep(now: number): void {
    for (const [field, at] of this.#removedAt) if (at + this.#ttlMs < now) this.#removedAt.delete(field);
  }
}
