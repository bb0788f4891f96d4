/**
 * Token buckets keyed by an address (or an address prefix): `perSecond` tokens flow in, at
 * most `burst` are kept, and a request costing `cost` tokens is allowed when that many are
 * there. Time is passed in (ms), so the buckets are pure state.
 *
 * Bounded memory: at most `maxKeys` buckets. A full bucket is the same as no bucket, so when
 * the table is full the ones that have refilled are forgotten first, then the least recently
 * used; a new key starts with a full bucket.
 */
interface Bucket {
  tokens: number;
  at: number;
}

export interface TokenBucketOptions {
  /** Tokens added per second; 0 means no limit (every take succeeds). */
  perSecond: number;
  /** Most tokens a bucket holds (what can be spent at once after a quiet spell). */
  burst: number;
  /** Most buckets kept. Default 65,536. */
  maxKeys?: number;
}

export class TokenBuckets {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: TokenBucketOptions) {
    this.#perMs = options.perSecond / 1000;
    this.#burst = options.burst;
    this.#maxKeys = options.maxKeys ?? 65_536;
  }

  /** Whether there is no limit at all. */
  get unlimited(): boolean {
    return this.#perMs === 0;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes `cost` tokens from `key`'s bucket if it holds them; false (nothing taken) if not. */
  take(key: string, cost: number, now: number): boolean {
    if (this.#perMs === 0) return true;
    const bucket = this.#refill(key, now);
    if (bucket.tokens < cost) return false;
    bucket.tokens -= cost;
    return true;
  }

  /** Milliseconds until `key`'s bucket holds `cost` tokens (0: now). Takes nothing. */
  waitFor(key: string, cost: number, now: number): number {
    if (this.#perMs === 0) return 0;
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) return 0;
    const tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#perMs);
    return tokens >= cost ? 0 : Math.ceil((cost - tokens) / this.#perMs);
  }

  #refill(key: string, now: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#forget(now);
      bucket = { tokens: this.#burst, at: now };
    } else {
      bucket.tokens = Math.min(this.#burst, bucket.tokens + Math.max(0, now - bucket.at) * this.#perMs);
      bucket.at = now;
      this.#buckets.delete(key); // re-inserted below: the map's order is least recently used first
    }
    this.#buckets.set(key, bucket);
    return bucket;
  }

  /** Makes room: drops refilled buckets, then the least recently used, down to 7/8 of the cap. */
  #forget(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.at) * this.#perMs >= this.#burst) this.#buckets.delete(key);
    }
    const keep = Math.floor((this.#maxKeys * 7) / 8);
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= keep) break;
      this.#buckets.delete(key);
    }
  }
}
