/**
 * What a download knows about each holder: whether it may be asked now, how much it sent and
 * how fast, and why it failed. Pure (time is passed in).
 *
 * A holder that fails (refused, vanished, stalled) rests for a growing while and is then
 * tried again: a restarting `peer serve` comes back on the same address. A holder that broke
 * the rules (lied about the content, broke framing) is banned for the rest of the download.
 */

export interface HolderReport {
  holder: string;
  state: 'ok' | 'failed' | 'banned';
  bytes: number;
  reason?: string;
}

interface Entry {
  holder: string;
  busy: boolean;
  failures: number;
  retryAt: number;
  banned: boolean;
  reason: string | undefined;
  bytes: number;
  /** Bytes per second, smoothed over the requests it answered. */
  rate: number;
}

/** First rest after a failure (ms); doubles with each failure in a row, up to MAX_REST_MS. */
const FIRST_REST_MS = 500;
const MAX_REST_MS = 8000;

export class HolderBook {
  readonly #entries = new Map<string, Entry>();

  /** Adds a holder (once); returns true when it is new. */
  add(holder: string): boolean {
    if (this.#entries.has(holder)) return false;
    this.#entries.set(holder, { holder, busy: false, failures: 0, retryAt: 0, banned: false, reason: undefined, bytes: 0, rate: 0 });
    return true;
  }

  has(holder: string): boolean {
    return this.#entries.has(holder);
  }

  /** Holders that may be given a connection now, fastest known first. */
  ready(now: number): string[] {
    return [...this.#entries.values()]
      .filter((e) => !e.banned && !e.busy && e.retryAt <= now)
      .sort((a, b) => b.rate - a.rate)
      .map((e) => e.holder);
  }

  /** Holders neither banned nor resting. */
  usable(now: number): string[] {
    return [...this.#entries.values()].filter((e) => !e.banned && (e.busy || e.retryAt <= now)).map((e) => e.holder);
  }

  /** Holders not banned (resting ones included). */
  notBanned(): string[] {
    return [...this.#entries.values()].filter((e) => !e.banned).map((e) => e.holder);
  }

  setBusy(holder: string, busy: boolean): void {
    this.#get(holder).busy = busy;
  }

  busyCount(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.busy) n++;
    return n;
  }

  /**
   * `bytes` arrived from `holder` in `ms`: it works, so its failures are forgiven. `credited`
   * (default: all of them) is what counts as sent by it in the report; a download credits the
   * pieces it kept instead (see credit()), so the report adds up to the file.
   */
  delivered(holder: string, bytes: number, ms: number, credited = bytes): void {
    const e = this.#get(holder);
    e.bytes += credited;
    e.failures = 0;
    if (ms > 0 && bytes > 0) {
      const r = (bytes * 1000) / ms;
      e.rate = e.rate === 0 ? r : 0.7 * e.rate + 0.3 * r;
    }
  }

  /** `holder` sent `bytes` that were kept (a piece written). */
  credit(holder: string, bytes: number): void {
    this.#get(holder).bytes += bytes;
  }

  failed(holder: string, reason: string, now: number): void {
    const e = this.#get(holder);
    e.failures++;
    e.reason = reason;
    e.retryAt = now + Math.min(MAX_REST_MS, FIRST_REST_MS * 2 ** (e.failures - 1));
  }

  ban(holder: string, reason: string): void {
    const e = this.#get(holder);
    e.banned = true;
    e.reason = reason;
  }

  isBanned(holder: string): boolean {
    return this.#entries.get(holder)?.banned ?? false;
  }

  /** When the next resting holder may be tried again (undefined: none is resting). */
  nextRetryAt(now: number): number | undefined {
    let next: number | undefined;
    for (const e of this.#entries.values()) if (!e.banned && !e.busy && e.retryAt > now) next = Math.min(next ?? Infinity, e.retryAt);
    return next;
  }

  rateOf(holder: string): number {
    return this.#entries.get(holder)?.rate ?? 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  report(): HolderReport[] {
    return [...this.#entries.values()].map((e) => ({
      holder: e.holder,
      state: e.banned ? 'banned' : e.failures > 0 ? 'failed' : 'ok',
      bytes: e.bytes,
      ...(e.reason !== undefined && (e.banned || e.failures > 0) ? { reason: e.reason } : {}),
    }));
  }

  #get(holder: string): Entry {
    const e = this.#entries.get(holder);
    if (!e) throw new RangeError(`unknown holder ${holder}`);
    return e;
  }
}
