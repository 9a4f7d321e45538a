/**
 * A bounded map that forgets the least recently used entry first: what the audit log and the IMDS
 * session tokens need of an LRU cache, in a few lines instead of a 3.6 MB dependency.
 */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();

  /** `onEvict` hears of an entry pushed out by a newer one (not of a replaced or deleted one). */
  constructor(
    readonly max: number,
    private readonly onEvict?: (value: V, key: K) => void,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`Lru: max must be a positive integer, got ${max}`);
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value, now the most recently used. */
  get(key: K): V | undefined {
    if (!this.#map.has(key)) return undefined;
    const value = this.#map.get(key) as V;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  set(key: K, value: V): this {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) {
      // A Map iterates in insertion order, and every use re-inserts: the first key is the least recent.
      const [oldKey, oldValue] = this.#map.entries().next().value as [K, V];
      this.#map.delete(oldKey);
      this.onEvict?.(oldValue, oldKey);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Most recently used first. */
  *values(): IterableIterator<V> {
    yield* [...this.#map.values()].reverse();
  }
}
