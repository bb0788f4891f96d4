/**
 * Where the frames of one ranged answer go. A run of pieces is written straight to the part
 * file at its offsets (pieces someone else finished meanwhile are skipped); an endgame copy of
 * a piece is held in memory until it is whole, because another holder may be writing the
 * same bytes on disk. Each finished piece is reported once, after its bytes are written.
 */
import { Writable } from 'node:stream';
import type { PieceMap } from './piece-map.js';
import type { PieceStore } from './piece-store.js';

export interface RangeSinkOptions {
  map: PieceMap;
  store: PieceStore;
  first: number;
  count: number;
  /** Keep the bytes in memory and hand them to onPiece instead of writing them. */
  inMemory: boolean;
  /** Piece `i` is complete (written, or in `data` for an in-memory sink); awaited. */
  onPiece: (i: number, data?: Buffer) => void | Promise<void>;
  /** Pieces not to write (done, or claimed by another copy): their bytes are dropped. */
  skip: (i: number) => boolean;
  /** Shared download rate limit: bytes are taken from it before they are written. */
  limiter?: { take(n: number): Promise<void> } | undefined;
  /** Hands back each chunk once it is written (or dropped): its memory may be read into again. */
  release?: ((chunk: Buffer) => void) | undefined;
}

export class RangeSink extends Writable {
  readonly #o: RangeSinkOptions;
  /** Absolute offset of the next byte to arrive. */
  #position: number;
  readonly #end: number;
  #piece: number;
  #pieceSkipped = false;
  #memory: Buffer | undefined;
  #memoryUsed = 0;
  #stopped = false;
  #waitingForBudget = false;
  #busy: Promise<void> = Promise.resolve();

  constructor(options: RangeSinkOptions) {
    // A few MiB may wait for the disk while the socket keeps reading.
    super({ highWaterMark: 1024 * 1024 });
    this.#o = options;
    this.#piece = options.first;
    this.#position = options.map.range(options.first).offset;
    const last = options.map.range(options.first + options.count - 1);
    this.#end = last.offset + last.length;
    this.#enterPiece();
  }

  /** Absolute offset of the next byte expected. */
  get position(): number {
    return this.#position;
  }

  /** The piece being received now. */
  get currentPiece(): number {
    return this.#piece;
  }

  /** Writes nothing more; resolves once the write in progress (if any) has finished. */
  stop(): Promise<void> {
    this.#stopped = true;
    // Waiting for the rate limit is not writing: nothing to wait for (it writes nothing after).
    if (this.#waitingForBudget) return Promise.resolve();
    return this.#busy.catch(() => {}); // a failed write is reported through 'error'
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const data = chunks.map((c) => c.chunk);
    this.#busy = this.#take(data);
    // Once #take has settled nothing reads these chunks any more (written, copied, or dropped).
    const release = () => {
      if (this.#o.release) for (const chunk of data) this.#o.release(chunk);
    };
    this.#busy.then(
      () => {
        release();
        callback();
      },
      (err: Error) => {
        release();
        callback(err);
      },
    );
  }

  async #take(chunks: Buffer[]): Promise<void> {
    for (const chunk of chunks) {
      let at = 0;
      while (at < chunk.length && !this.#stopped) {
        const { offset, length } = this.#o.map.range(this.#piece);
        const n = Math.min(chunk.length - at, offset + length - this.#position);
        const slice = chunk.subarray(at, at + n);
        if (this.#o.limiter) {
          this.#waitingForBudget = true;
          await this.#o.limiter.take(n);
          this.#waitingForBudget = false;
        }
        if (this.#stopped) return;
        await this.#put(slice);
        at += n;
        this.#position += n;
        if (this.#position === offset + length) await this.#finishPiece();
      }
    }
  }

  async #put(slice: Buffer): Promise<void> {
    if (this.#pieceSkipped) return;
    if (this.#memory) {
      slice.copy(this.#memory, this.#memoryUsed);
      this.#memoryUsed += slice.length;
    } else {
      await this.#o.store.write(slice, this.#position);
    }
  }

  async #finishPiece(): Promise<void> {
    const i = this.#piece;
    if (!this.#pieceSkipped && !this.#stopped) await this.#o.onPiece(i, this.#memory);
    this.#piece++;
    if (this.#position < this.#end) this.#enterPiece();
  }

  #enterPiece(): void {
    const i = this.#piece;
    // A piece someone else finished before we reached it is not written again.
    this.#pieceSkipped = this.#o.skip(i);
    this.#memory = this.#o.inMemory && !this.#pieceSkipped ? Buffer.allocUnsafe(this.#o.map.range(i).length) : undefined;
    this.#memoryUsed = 0;
  }
}
