/**
 * A token bucket that caps the bytes per second of every connection that shares it (one per
 * process and direction), and the parser for the rates people type on the command line.
 *
 * The bucket holds at most `burstBytes` tokens and refills at `bytesPerSecond`. Waiters are
 * served strictly first come, first served: the one at the head of the queue takes every
 * token as it arrives until its whole amount is paid, and nobody behind it is served before.
 * So one connection cannot starve another, a take larger than the bucket simply waits for
 * its share of the rate (it is paid in instalments, never needs a full bucket, so it cannot
 * deadlock), and the long-run rate never exceeds `bytesPerSecond` whatever the take sizes.
 * Callers that have no limit pass no limiter at all.
 */
import { performance } from 'node:perf_hooks';

/** Smallest default burst: small rates still let a socket write go out in one piece. */
const MIN_DEFAULT_BURST = 64 * 1024;

export interface RateLimiterOptions {
  /** The sustained rate, bytes per second; a finite number > 0. */
  bytesPerSecond: number;
  /**
   * The most bytes that may go out at once after a quiet spell (the bucket size). Default:
   * a tenth of a second at the full rate, at least 64 KiB. The bucket starts full.
   */
  burstBytes?: number;
  /** Monotonic clock in milliseconds (tests inject a fake one). Default `performance.now`. */
  now?: () => number;
}

interface Waiter {
  /** Bytes still to be paid before `resolve` may be called. */
  owed: number;
  resolve: () => void;
}

export class RateLimiter {
  readonly #bytesPerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #queue: Waiter[] = [];
  #tokens: number;
  #refilledAt: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: RateLimiterOptions) {
    const { bytesPerSecond } = options;
    if (!(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) throw new RangeError(`bytesPerSecond must be a finite number > 0, got ${bytesPerSecond}`);
    const burst = options.burstBytes ?? Math.max(MIN_DEFAULT_BURST, bytesPerSecond / 10);
    if (!(Number.isFinite(burst) && burst > 0)) throw new RangeError(`burstBytes must be a finite number > 0, got ${burst}`);
    this.#bytesPerMs = bytesPerSecond / 1000;
    this.#burst = burst;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = burst;
    this.#refilledAt = this.#now();
  }

  /** Requests queued behind the tokens available now (for tests and metrics). */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Resolves when `n` more bytes may be sent (or received). Never rejects; after close() it
   * resolves at once. Throws a RangeError for a count that is negative or not finite.
   */
  take(n: number): Promise<void> {
    if (!(n >= 0 && Number.isFinite(n))) throw new RangeError(`take() needs a finite byte count >= 0, got ${n}`);
    if (this.#closed || n === 0) return Promise.resolve();
    this.#refill();
    // The fast path may only skip the queue when there is no queue: first come, first served.
    if (this.#queue.length === 0 && this.#tokens >= n) {
      this.#tokens -= n;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#queue.push({ owed: n, resolve });
      this.#pay();
    });
  }

  /** Lets every waiter go and stops limiting: nothing is left waiting on a closed process. */
  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#queue.splice(0)) w.resolve();
    return Promise.resolve();
  }

  #refill(): void {
    const now = this.#now();
    // max(0, ...): a clock that steps back must not take tokens away.
    const earned = Math.max(0, now - this.#refilledAt) * this.#bytesPerMs;
    this.#tokens = Math.min(this.#burst, this.#tokens + earned);
    this.#refilledAt = now;
  }

  /** Hands the tokens there are to the head of the queue, then sleeps until more are due. */
  #pay(): void {
    this.#refill();
    for (let head = this.#queue[0]; head; head = this.#queue[0]) {
      const paid = Math.min(this.#tokens, head.owed);
      this.#tokens -= paid;
      head.owed -= paid;
      if (head.owed > 0) break;
      this.#queue.shift();
      head.resolve();
    }
    const head = this.#queue[0];
    if (!head || this.#timer) return;
    // Wake before the bucket could overflow (a head owing more than the burst is paid in
    // instalments), and at least 1 ms later so float dust cannot spin the loop.
    const ms = Math.max(1, Math.ceil(Math.min(head.owed, this.#burst) / this.#bytesPerMs));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pay();
    }, ms);
    this.#timer.unref();
  }
}

const UNIT_BYTES: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Bytes per second from text like `1000`, `500k`, `1.5M`, `10MB`, `2 GiB/s`. Units are
 * binary and case-insensitive (k = 1024, M = 1024², G = 1024³), as the sizes this tool
 * prints are; a trailing `B` or `iB` and `/s` are allowed. The result is rounded down to
 * whole bytes. Returns undefined for anything else, and for rates below 1 byte per second.
 */
export function parseRate(text: string): number | undefined {
  const m = /^(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmg])i?)?b?(?:\/s)?$/i.exec(text.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNIT_BYTES[(m[2] ?? '').toLowerCase()]);
  return Number.isFinite(bytes) && bytes >= 1 ? bytes : undefined;
}
