/**
 * Interns keys (names, server keys, source addresses) as small integer ids with reference
 * counts, so the registry's typed arrays can refer to a string by a 4-byte id. Ids of released
 * keys are reused.
 */
export class InternTable<K> {
  readonly #copyKey: (key: K) => K;
  readonly #ids = new Map<K, number>();
  #keys: K[] = [];
  #refs = new Int32Array(256);
  readonly #free: number[] = [];

  /** `copyKey` makes the copy of a new key that the table keeps (default: the key itself). */
  constructor(options: { copyKey?: (key: K) => K } = {}) {
    this.#copyKey = options.copyKey ?? ((key) => key);
  }

  /** Id slots in use or free; the registry sizes its per-id arrays from it. */
  get capacity(): number {
    return this.#keys.length;
  }

  get size(): number {
    return this.#ids.size;
  }

  idOf(key: K): number | undefined {
    return this.#ids.get(key);
  }

  keyOf(id: number): K {
    return this.#keys[id];
  }

  refs(id: number): number {
    return this.#refs[id];
  }

  /** The id of `key`, interning it if new, with one more reference. */
  acquire(key: K): number {
    let id = this.#ids.get(key);
    if (id === undefined) {
      key = this.#copyKey(key);
      id = this.#free.pop() ?? this.#keys.length;
      if (id === this.#keys.length) this.#keys.push(key);
      else this.#keys[id] = key;
      if (id >= this.#refs.length) {
        const grown = new Int32Array(this.#refs.length * 2);
        grown.set(this.#refs);
        this.#refs = grown;
      }
      this.#ids.set(key, id);
    }
    this.#refs[id]++;
    return id;
  }

  /** Drops one reference; returns true when that was the last and the id was freed. */
  release(id: number): boolean {
    if (--this.#refs[id] > 0) return false;
    this.#ids.delete(this.#keys[id]);
    this.#keys[id] = undefined as K; // let the string go; the id is reused later
    this.#free.push(id);
    return true;
  }

  entries(): IterableIterator<[K, number]> {
    return this.#ids.entries();
  }
}
