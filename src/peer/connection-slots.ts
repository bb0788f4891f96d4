/**
 * Who may hold a connection to the content server, and for how long. At most `max`
 * connections in all and `maxPerSource` from one address. A connection is idle while no
 * request of it is being answered (receiving part of a request counts as idle); one idle for
 * `idleTimeoutMs` is closed, and bytes trickling in do not restart that clock. At the global
 * limit the connection idle longest is closed to make room for a newcomer, so silent or
 * trickling clients cannot keep everyone else out; a newcomer is refused only when every
 * connection is busy answering.
 */

export interface ConnectionSlotsOptions {
  max: number;
  maxPerSource: number;
  idleTimeoutMs: number;
}

/** Why a slot's connection must go: closed to make room, or idle too long. */
export type SlotEnd = 'evicted' | 'idle';

/** One admitted connection. */
export interface Slot {
  /** A request is being answered: the connection is not idle and cannot be evicted. */
  busy(): void;
  /** The answer is done: the idle clock starts again. */
  idle(): void;
  /** The connection is gone; frees its place. Idempotent. */
  release(): void;
}

export class ConnectionSlots {
  readonly #o: ConnectionSlotsOptions;
  readonly #perSource = new Map<string, number>();
  /** Idle slots, idle longest first (a Map keeps insertion order), with their closers. */
  readonly #idle = new Map<Slot, (end: SlotEnd) => void>();
  #count = 0;

  constructor(options: ConnectionSlotsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#count;
  }

  /**
   * A slot for a new connection from `source`, or the reason there is none. `close` is
   * called (once, after the slot is released) when the connection is evicted or idle too long.
   */
  admit(source: string, close: (end: SlotEnd) => void): Slot | string {
    const held = this.#perSource.get(source) ?? 0;
    if (held >= this.#o.maxPerSource) return `too many connections from ${source} (limit ${this.#o.maxPerSource}), try again later`;
    if (this.#count >= this.#o.max) {
      const oldest = this.#idle.entries().next().value;
      if (!oldest) return 'too many connections, try again later';
      const [slot, closeOldest] = oldest;
      slot.release();
      closeOldest('evicted');
    }
    this.#count++;
    this.#perSource.set(source, held + 1);
    return this.#slot(source, close);
  }

  #slot(source: string, close: (end: SlotEnd) => void): Slot {
    let timer: NodeJS.Timeout | undefined;
    let gone = false;
    const slot: Slot = {
      busy: () => {
        clearTimeout(timer);
        this.#idle.delete(slot);
      },
      idle: () => {
        if (gone) return;
        slot.busy(); // to the end of the idle order
        this.#idle.set(slot, close);
        timer = setTimeout(() => {
          slot.release();
          close('idle');
        }, this.#o.idleTimeoutMs);
      },
      release: () => {
        if (gone) return;
        gone = true;
        slot.busy();
        this.#count--;
        const left = (this.#perSource.get(source) ?? 1) - 1;
        if (left > 0) this.#perSource.set(source, left);
        else this.#perSource.delete(source);
      },
    };
    slot.idle();
    return slot;
  }
}
