/**
 * The whole-file SHA-256 of a swarm download, computed while it runs: whenever the done prefix
 * of the piece map grows, those pieces are read back (from the page cache, just written) and
 * fed to the hash in order. When the last piece arrives only a little is left to hash, so
 * verifying a big file does not add a second pass at the end.
 *
 * A piece inside the hashed prefix that is later dropped (its holder broke the rules) makes the
 * hash start over.
 */
import { createHash, type Hash } from 'node:crypto';
import type { PieceMap } from './piece-map.js';
import type { PieceStore } from './piece-store.js';

export class PrefixHasher {
  readonly #map: PieceMap;
  readonly #store: PieceStore;
  #hash: Hash = createHash('sha256');
  /** Pieces fed to the hash. */
  #hashed = 0;
  #running: Promise<void> | undefined;
  #generation = 0;
  /** One piece-sized buffer for every read (hashing is done before the next read starts). */
  #buffer: Buffer | undefined;

  constructor(map: PieceMap, store: PieceStore) {
    this.#map = map;
    this.#store = store;
  }

  /** Hashes whatever new done prefix there is, in the background. */
  advance(): void {
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    this.#running.catch(() => {}); // digest() reports read errors
  }

  reset(): void {
    this.#generation++;
    this.#hash = createHash('sha256');
    this.#hashed = 0;
  }

  /** The digest of the whole file (every piece must be done). */
  async digest(): Promise<string> {
    for (;;) {
      await this.#running;
      if (this.#hashed === this.#map.count) return this.#hash.copy().digest('base64url');
      if (!this.#map.complete) throw new Error('digest() called before every piece was done');
      await (this.#running ??= this.#run().finally(() => (this.#running = undefined)));
    }
  }

  async #run(): Promise<void> {
    while (this.#hashed < this.#map.count && this.#map.isDone(this.#hashed)) {
      const generation = this.#generation;
      const i = this.#hashed;
      this.#buffer ??= Buffer.allocUnsafe(this.#map.pieceSize);
      const data = await this.#store.readPiece(i, 'part', this.#buffer);
      if (generation !== this.#generation) continue; // reset while reading: start over
      this.#hash.update(data);
      this.#hashed = i + 1;
    }
  }
}
