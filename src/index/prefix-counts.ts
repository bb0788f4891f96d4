/**
 * Registrations per network prefix (/24 or /64, address-prefix.ts), for the registry's
 * per-prefix cap. A source's prefix is worked out once, when the source is first seen, and
 * kept by its source id; after that counting costs two array reads.
 */
import { addressPrefix } from './address-prefix.js';
import { InternTable } from './intern-table.js';

const NONE = -1;

export class PrefixCounts {
  readonly #prefixes = new InternTable<string>();
  #ofSource = new Int32Array(256).fill(NONE);

  /** Registrations held by the prefix of `from` (`sourceId`: its id, when it has one). */
  count(from: string, sourceId: number | undefined): number {
    const id = sourceId === undefined ? this.#prefixes.idOf(addressPrefix(from)) : this.#ofSource[sourceId];
    return id === undefined || id === NONE ? 0 : this.#prefixes.refs(id);
  }

  /** One more registration from source `sourceId` (address `from`). */
  add(sourceId: number, from: string): void {
    if (sourceId >= this.#ofSource.length) {
      const grown = new Int32Array(Math.max(sourceId + 1, this.#ofSource.length * 2)).fill(NONE);
      grown.set(this.#ofSource);
      this.#ofSource = grown;
    }
    const known = this.#ofSource[sourceId];
    if (known === NONE) this.#ofSource[sourceId] = this.#prefixes.acquire(addressPrefix(from));
    else this.#prefixes.acquire(this.#prefixes.keyOf(known));
  }

  /** One registration less from `sourceId`; `lastOfSource` when the source id is being freed. */
  remove(sourceId: number, lastOfSource: boolean): void {
    const id = this.#ofSource[sourceId];
    this.#prefixes.release(id);
    if (lastOfSource) this.#ofSource[sourceId] = NONE;
  }
}
