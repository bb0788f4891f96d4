/**
 * The local changes waiting for Redis, as flat text lines (redis-changes.ts), in order.
 *
 * While Redis is up nothing is ever dropped: a burst larger than the bound is sent as fast as
 * Redis takes it. While Redis is down the outbox is bounded: past `limit` lines it keeps only
 * the removals (the newest `limit / 2` of them) and marks itself overflowed, which makes the
 * link write every live registration back when Redis returns; the removals are sent before
 * that write-back, so a registration removed and added again during the outage ends up live.
 */
import { fieldOfLine, isRemovalLine } from './redis-changes.js';

export class Outbox {
  readonly #limit: number;
  #lines: string[] = [];
  #head = 0;
  /** Lines were dropped while Redis was down: a full write-back is due when it returns. */
  overflowed = false;
  /** Removals dropped as well (more than limit / 2 of them in one outage). */
  removalsDropped = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#lines.length - this.#head;
  }

  /** Queues a line; `up` says whether Redis is reachable (then nothing is dropped). */
  push(line: string, up: boolean): void {
    if (!up) {
      if (this.overflowed && !isRemovalLine(line)) return; // the write-back will carry it
      if (this.size >= this.#limit) this.#shed();
    }
    this.#lines.push(line);
  }

  /** Takes up to `max` lines from the front. */
  take(max: number): string[] {
    const end = Math.min(this.#lines.length, this.#head + max);
    const lines = this.#lines.slice(this.#head, end);
    this.#head = end;
    if (this.#head === this.#lines.length) {
      this.#lines = [];
      this.#head = 0;
    } else if (this.#head > 65_536 && this.#head * 2 > this.#lines.length) {
      this.#lines = this.#lines.slice(this.#head);
      this.#head = 0;
    }
    return lines;
  }

  /** The hash fields of the queued lines (registrations whose latest change Redis lacks). */
  fields(): Set<string> {
    const fields = new Set<string>();
    for (let i = this.#head; i < this.#lines.length; i++) fields.add(fieldOfLine(this.#lines[i]));
    return fields;
  }

  #shed(): void {
    const keep = this.#limit >> 1;
    let removals = this.#lines.slice(this.#head).filter(isRemovalLine);
    if (removals.length > keep) {
      this.removalsDropped += removals.length - keep;
      removals = removals.slice(removals.length - keep);
    }
    this.#lines = removals;
    this.#head = 0;
    this.overflowed = true;
  }
}
