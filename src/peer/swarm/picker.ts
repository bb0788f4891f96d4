/**
 * Decides which pieces each holder fetches next. Pure: the driver reports what happened and
 * the picker keeps the reservations.
 *
 * - A request covers a run of adjacent missing pieces, lowest first: one fast holder streams
 *   long runs (few round trips), several holders split what is left fairly, and a holder
 *   that is faster simply comes back for more sooner.
 * - Endgame: once every missing piece is reserved, an idle holder may ask for a piece that
 *   another holder is still fetching (the last piece of the run that has most left), so one
 *   slow holder cannot hold up the end. The first copy to arrive is kept.
 * - Each done piece remembers which holder sent it, so a holder caught breaking the rules
 *   loses every piece it sent (none of its unverified bytes are kept).
 */
import type { PieceMap } from './piece-map.js';

export interface Assignment {
  id: number;
  holder: string;
  first: number;
  /** Pieces in the run (1 for an endgame request). */
  count: number;
  /** A second request for a piece another holder is fetching. */
  endgame: boolean;
}

export interface PickerOptions {
  /** Longest run, in pieces. Default 16. */
  maxRun?: number;
  /** Allow endgame requests. Default true. */
  endgame?: boolean;
}

/** Source recorded for pieces found on disk from an earlier run. */
export const EARLIER_RUN = 'an earlier run';

export class Picker {
  readonly map: PieceMap;
  readonly #maxRun: number;
  readonly #endgame: boolean;
  readonly #requests = new Map<number, Assignment>();
  /** Requests holding each reserved piece. */
  readonly #reserved = new Map<number, Set<number>>();
  readonly #sources: (string | undefined)[];
  #nextId = 1;

  constructor(map: PieceMap, options: PickerOptions = {}) {
    this.map = map;
    this.#maxRun = options.maxRun ?? 16;
    this.#endgame = options.endgame ?? true;
    this.#sources = new Array<string | undefined>(map.count);
    for (let i = 0; i < map.count; i++) if (map.isDone(i)) this.#sources[i] = EARLIER_RUN;
  }

  /** The next request for `holder`, or undefined when there is nothing it could usefully do. */
  pick(holder: string, activeHolders = 1): Assignment | undefined {
    const free = this.#unreservedMissing();
    if (free.length > 0) {
      const first = free[0];
      const share = Math.max(1, Math.floor(free.length / (2 * Math.max(1, activeHolders))));
      const limit = Math.min(this.#maxRun, share);
      let count = 1;
      while (count < limit && first + count < this.map.count && !this.map.isDone(first + count) && !this.#reserved.has(first + count)) count++;
      return this.#open(holder, first, count, false);
    }
    if (!this.#endgame) return undefined;
    const piece = this.#stealable(holder);
    return piece === undefined ? undefined : this.#open(holder, piece, 1, true);
  }

  /**
   * Piece `piece` of request `id` is written. Returns the other requests that hold it (the
   * driver cancels those that have nothing else left to do).
   */
  complete(id: number, piece: number): number[] {
    const a = this.#requests.get(id);
    if (!a || piece < a.first || piece >= a.first + a.count) throw new RangeError(`piece ${piece} is not part of request ${id}`);
    this.map.markDone(piece);
    this.#sources[piece] = a.holder;
    const holders = this.#reserved.get(piece);
    this.#reserved.delete(piece);
    return holders ? [...holders].filter((other) => other !== id) : [];
  }

  /** Whether request `id` still has a piece that is not done. */
  hasWorkLeft(id: number): boolean {
    const a = this.#requests.get(id);
    if (!a) return false;
    for (let i = a.first; i < a.first + a.count; i++) if (!this.map.isDone(i)) return true;
    return false;
  }

  /** Request `id` ended (done, failed or cancelled): its unfinished pieces are free again. */
  finish(id: number): void {
    const a = this.#requests.get(id);
    if (!a) return;
    this.#requests.delete(id);
    for (let i = a.first; i < a.first + a.count; i++) {
      const set = this.#reserved.get(i);
      set?.delete(id);
      if (set?.size === 0) this.#reserved.delete(i);
    }
  }

  /** Forgets every piece `holder` sent (it broke the rules); returns how many were dropped. */
  dropSource(holder: string): number {
    let dropped = 0;
    for (let i = 0; i < this.map.count; i++) {
      if (this.#sources[i] === holder && this.map.isDone(i)) {
        this.forget(i);
        dropped++;
      }
    }
    return dropped;
  }

  /** Marks piece `i` missing (found wrong on disk). */
  forget(i: number): void {
    this.map.markMissing(i);
    this.#sources[i] = undefined;
    // An open request whose run covers it will fetch it again: it holds it, so no one else
    // is given it as well (complete() released it when another request wrote it).
    for (const a of this.#requests.values()) if (i >= a.first && i < a.first + a.count) this.#reserve(i, a.id);
  }

  /** Records that piece `i` on disk now holds `holder`'s bytes. */
  setSource(i: number, holder: string): void {
    this.#sources[i] = holder;
  }

  sourceOf(i: number): string | undefined {
    return this.#sources[i];
  }

  get openRequests(): number {
    return this.#requests.size;
  }

  #open(holder: string, first: number, count: number, endgame: boolean): Assignment {
    const a: Assignment = { id: this.#nextId++, holder, first, count, endgame };
    this.#requests.set(a.id, a);
    for (let i = first; i < first + count; i++) this.#reserve(i, a.id);
    return a;
  }

  #reserve(piece: number, id: number): void {
    let set = this.#reserved.get(piece);
    if (!set) this.#reserved.set(piece, (set = new Set()));
    set.add(id);
  }

  #unreservedMissing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.map.count && out.length < this.#maxRun * 64; i++) {
      if (!this.map.isDone(i) && !this.#reserved.has(i)) out.push(i);
    }
    return out;
  }

  /**
   * For endgame: the last missing piece of the run with the most pieces left, among pieces
   * no other endgame request holds and that `holder` is not already fetching.
   */
  #stealable(holder: string): number | undefined {
    let best: number | undefined;
    let bestLeft = 0;
    for (const a of this.#requests.values()) {
      if (a.holder === holder || a.endgame) continue;
      let left = 0;
      let last: number | undefined;
      for (let i = a.first; i < a.first + a.count; i++) {
        if (this.map.isDone(i)) continue;
        left++;
        if (this.#reserved.get(i)?.size === 1) last = i;
      }
      if (last !== undefined && left > bestLeft && !this.#heldBy(last, holder)) {
        best = last;
        bestLeft = left;
      }
    }
    return best;
  }

  #heldBy(piece: number, holder: string): boolean {
    for (const id of this.#reserved.get(piece) ?? []) if (this.#requests.get(id)?.holder === holder) return true;
    return false;
  }
}
