/**
 * Which pieces of a download are on disk. The content is cut into fixed-size pieces (the last
 * one shorter); a piece is either done (all its bytes written) or missing. Pure: no files.
 *
 * The map is saved beside the partial file as base64 of a bit field (bit i of byte i>>3, most
 * significant bit first), so an interrupted download resumes exactly what is missing.
 */

export const MIN_PIECE_SIZE = 256 * 1024;
export const MAX_PIECE_SIZE = 4 * 1024 * 1024;

/**
 * Piece size for a file: a power of two giving about 256 pieces, between 256 KiB and 4 MiB.
 * Small enough that endgame duplicates (held in memory) stay cheap and a stalled holder
 * loses little; requests cover runs of pieces, so small pieces do not cost round trips.
 */
export function pieceSizeFor(size: number): number {
  let p = MIN_PIECE_SIZE;
  while (p < MAX_PIECE_SIZE && p * 256 < size) p *= 2;
  return p;
}

export interface PieceMapJson {
  pieceSize: number;
  done: string;
}

export class PieceMap {
  readonly size: number;
  readonly pieceSize: number;
  readonly count: number;
  readonly #bits: Uint8Array;
  #doneCount = 0;

  constructor(size: number, pieceSize = pieceSizeFor(size)) {
    if (!(Number.isSafeInteger(size) && size >= 0)) throw new RangeError(`bad size ${size}`);
    if (!(Number.isSafeInteger(pieceSize) && pieceSize > 0)) throw new RangeError(`bad piece size ${pieceSize}`);
    this.size = size;
    this.pieceSize = pieceSize;
    this.count = Math.ceil(size / pieceSize);
    this.#bits = new Uint8Array(Math.ceil(this.count / 8));
  }

  /** A map with the first `length` bytes' whole pieces done (a part file of the old format). */
  static fromPrefix(size: number, length: number, pieceSize?: number): PieceMap {
    const map = new PieceMap(size, pieceSize);
    const whole = length >= size ? map.count : Math.floor(length / map.pieceSize);
    for (let i = 0; i < whole; i++) map.markDone(i);
    return map;
  }

  /** Restores a saved map; undefined when it does not fit this size. */
  static fromJson(size: number, json: PieceMapJson): PieceMap | undefined {
    if (!(Number.isSafeInteger(json.pieceSize) && json.pieceSize > 0) || typeof json.done !== 'string') return undefined;
    const map = new PieceMap(size, json.pieceSize);
    const bits = Buffer.from(json.done, 'base64');
    if (bits.length !== map.#bits.length) return undefined;
    for (let i = 0; i < map.count; i++) if (bits[i >> 3] & (0x80 >> (i & 7))) map.markDone(i);
    return map;
  }

  toJson(): PieceMapJson {
    return { pieceSize: this.pieceSize, done: Buffer.from(this.#bits).toString('base64') };
  }

  /** Byte offset and length of piece `i`. */
  range(i: number): { offset: number; length: number } {
    const offset = i * this.pieceSize;
    return { offset, length: Math.min(this.pieceSize, this.size - offset) };
  }

  /** The piece holding byte `offset`. */
  pieceAt(offset: number): number {
    return Math.floor(offset / this.pieceSize);
  }

  isDone(i: number): boolean {
    return (this.#bits[i >> 3] & (0x80 >> (i & 7))) !== 0;
  }

  markDone(i: number): void {
    this.#check(i);
    if (this.isDone(i)) return;
    this.#bits[i >> 3] |= 0x80 >> (i & 7);
    this.#doneCount++;
  }

  markMissing(i: number): void {
    this.#check(i);
    if (!this.isDone(i)) return;
    this.#bits[i >> 3] &= ~(0x80 >> (i & 7));
    this.#doneCount--;
  }

  get doneCount(): number {
    return this.#doneCount;
  }

  get complete(): boolean {
    return this.#doneCount === this.count;
  }

  /** Bytes in done pieces. */
  get doneBytes(): number {
    if (this.#doneCount === 0) return 0;
    const last = this.count - 1;
    return this.isDone(last) ? (this.#doneCount - 1) * this.pieceSize + this.range(last).length : this.#doneCount * this.pieceSize;
  }

  /** Length of the done prefix, in pieces. */
  donePrefix(): number {
    let i = 0;
    while (i < this.count && this.isDone(i)) i++;
    return i;
  }

  #check(i: number): void {
    if (!(Number.isInteger(i) && i >= 0 && i < this.count)) throw new RangeError(`piece ${i} out of 0..${this.count - 1}`);
  }
}
