/**
 * The buffers a content connection's socket reads into (net's `onread`), recycled.
 *
 * Reads fill one 1 MiB buffer one after another, each handed on as a view of the part it
 * filled, so payload goes to the sink without a copy. Once less than a quarter is left, the
 * next read gets another buffer.
 *
 * A buffer whose payload has all been released by its consumer (written to disk) is reused
 * instead of becoming garbage. Otherwise a fast download makes a megabyte of garbage per
 * megabyte received, and the client's memory grows with the file until the collector catches
 * up.
 *
 * Payload that is never released (a consumer that keeps it, or a download stopped midway)
 * only means its buffer is not reused: it is collected as any other.
 */

const READ_BUFFER_SIZE = 1024 * 1024;
/** Reads smaller than this are copied out: a trickle of tiny reads must not pin a buffer. */
const COPY_BELOW = 16 * 1024;
/** Free buffers kept for reuse, per connection. */
const MAX_FREE = 3;

interface Tracked {
  buf: Buffer;
  /** Payload bytes handed on and not yet released. */
  held: number;
  /** No longer read into: reusable once `held` is 0. */
  retired: boolean;
}

export class ReadBuffers {
  readonly #tracked = new Map<ArrayBufferLike, Tracked>();
  readonly #free: Buffer[] = [];
  #current: Tracked;
  #used = 0;

  constructor() {
    this.#current = this.#fresh();
  }

  /** The buffer for the next read (net calls it before every read). */
  readonly next = (): Buffer => this.#current.buf.subarray(this.#used);

  /** The `n` bytes just read, as a view (or, for a small read, a copy). */
  take(n: number): Buffer {
    if (n < COPY_BELOW) return Buffer.from(this.#current.buf.subarray(this.#used, this.#used + n));
    const chunk = this.#current.buf.subarray(this.#used, this.#used + n);
    this.#used += n;
    return chunk;
  }

  /**
   * After a chunk has been parsed (its payload slices held): moves on to another buffer when
   * this one is nearly full. Not done in take(), where the chunk is not held yet and a reused
   * buffer could be read into under it.
   */
  settle(): void {
    if (READ_BUFFER_SIZE - this.#used >= READ_BUFFER_SIZE / 4) return;
    const old = this.#current;
    old.retired = true;
    this.#current = this.#fresh();
    this.#used = 0;
    this.#maybeFree(old);
  }

  /** A payload slice was handed on. */
  hold(slice: Buffer): void {
    const t = this.#tracked.get(slice.buffer);
    if (t) t.held += slice.length;
  }

  /** The consumer is done with `slice` (written): its bytes may be read over once all are. */
  release(slice: Buffer): void {
    const t = this.#tracked.get(slice.buffer);
    if (!t) return;
    t.held -= slice.length;
    this.#maybeFree(t);
  }

  #maybeFree(t: Tracked): void {
    if (!t.retired || t.held > 0) return;
    this.#tracked.delete(t.buf.buffer);
    if (this.#free.length < MAX_FREE) this.#free.push(t.buf);
  }

  #fresh(): Tracked {
    const buf = this.#free.pop() ?? Buffer.allocUnsafe(READ_BUFFER_SIZE);
    const t: Tracked = { buf, held: 0, retired: false };
    this.#tracked.set(buf.buffer, t);
    return t;
  }
}
