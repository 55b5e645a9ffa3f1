/**
 * The ordered index of the KV store: keys (in sort form, see kv_key.ts) to immutable records,
 * kept as a list of sorted leaves of at most {@linkcode LEAF_KEYS_MAX} keys each (a two-level
 * B-tree, like Python's sortedcontainers).
 *
 * Why this shape:
 * - lookups are two binary searches (over leaf first keys, then inside one leaf): about 20
 *   string comparisons at a million keys, no hash map beside it to keep in step;
 * - inserting a new key moves at most a leaf's worth of slots; splitting a leaf moves the leaf
 *   list, which is n / 256 pointers on average, so a million random inserts stay cheap, while
 *   a plain sorted array would move n / 2 slots per insert;
 * - a snapshot is copy-on-write at leaf granularity: {@linkcode SortedIndex.freeze} copies
 *   the leaf list (n / 256 pointers) and bumps a generation; a leaf of an older generation is
 *   never changed again, a write clones it first (at most 512 slots). So a snapshot costs no
 *   copy of the data, and writes after it pay one leaf clone per leaf they touch;
 * - a restore arrives in key order and is built leaf by leaf in O(n) by
 *   {@linkcode SortedIndexBuilder}, with no sorting.
 *
 * Invariants: keys are strictly increasing across the concatenated leaves; no leaf is empty;
 * records are never mutated; a leaf whose `gen` is below the index's generation is shared with
 * a frozen view and is read-only.
 *
 * @module
 */

import { assert } from "../util/assert.ts";

/** The stored state of one key. Immutable: a write replaces the record. */
export interface KvRecord {
  readonly value: Uint8Array;
  /** The index of the Raft entry that last wrote the key. */
  readonly revision: number;
  /** The UTF-8 length of the key, kept for snapshot sizing and stats. */
  readonly keyBytes: number;
}

/** One sorted run of keys; `keys[i]` maps to `records[i]`. */
export interface Leaf {
  readonly gen: number;
  readonly keys: string[];
  readonly records: KvRecord[];
}

/** Keys per leaf before it splits. */
export const LEAF_KEYS_MAX = 512;
/** How full a restore fills leaves, leaving room for inserts without an early split. */
const LEAF_KEYS_BUILD = 384;

/** Index of the first element of the sorted `keys` that is ≥ `key` (or `keys.length`). */
function lowerBoundIn(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A mutable ordered map from sort-form keys to {@linkcode KvRecord}s. */
export class SortedIndex {
  #leaves: Leaf[];
  #gen: number;
  #size: number;

  constructor(leaves: Leaf[] = [], size = 0) {
    this.#leaves = leaves;
    this.#size = size;
    this.#gen = leaves.reduce((max, leaf) => Math.max(max, leaf.gen), 0);
  }

  /** The number of keys. */
  get size(): number {
    return this.#size;
  }

  /** The leaf that holds `key` if present, or where it would be inserted. */
  #leafFor(key: string): number {
    const leaves = this.#leaves;
    let lo = 0;
    let hi = leaves.length - 1;
    // Largest i with leaves[i].keys[0] <= key, or 0.
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (leaves[mid]!.keys[0]! <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Leaf `i`, cloned first if a frozen view shares it. */
  #own(i: number): Leaf {
    const leaf = this.#leaves[i]!;
    if (leaf.gen === this.#gen) return leaf;
    const copy: Leaf = { gen: this.#gen, keys: leaf.keys.slice(), records: leaf.records.slice() };
    this.#leaves[i] = copy;
    return copy;
  }

  /** The record of `key`, or undefined. */
  get(key: string): KvRecord | undefined {
    if (this.#leaves.length === 0) return undefined;
    const leaf = this.#leaves[this.#leafFor(key)]!;
    const pos = lowerBoundIn(leaf.keys, key);
    return leaf.keys[pos] === key ? leaf.records[pos] : undefined;
  }

  /** Sets the record of `key`, inserting the key if new. */
  set(key: string, record: KvRecord): void {
    if (this.#leaves.length === 0) {
      this.#leaves.push({ gen: this.#gen, keys: [key], records: [record] });
      this.#size = 1;
      return;
    }
    const i = this.#leafFor(key);
    const leaf = this.#own(i);
    const pos = lowerBoundIn(leaf.keys, key);
    if (leaf.keys[pos] === key) {
      leaf.records[pos] = record;
      return;
    }
    leaf.keys.splice(pos, 0, key);
    leaf.records.splice(pos, 0, record);
    this.#size++;
    if (leaf.keys.length > LEAF_KEYS_MAX) {
      const half = leaf.keys.length >>> 1;
      const right: Leaf = {
        gen: this.#gen,
        keys: leaf.keys.splice(half),
        records: leaf.records.splice(half),
      };
      this.#leaves.splice(i + 1, 0, right);
    }
  }

  /** Removes `key`; returns whether it was present. */
  delete(key: string): boolean {
    if (this.#leaves.length === 0) return false;
    const i = this.#leafFor(key);
    const shared = this.#leaves[i]!;
    const pos = lowerBoundIn(shared.keys, key);
    if (shared.keys[pos] !== key) return false;
    const leaf = this.#own(i);
    leaf.keys.splice(pos, 1);
    leaf.records.splice(pos, 1);
    this.#size--;
    if (leaf.keys.length === 0) {
      this.#leaves.splice(i, 1);
    } else if (leaf.keys.length < LEAF_KEYS_MAX / 4 && i + 1 < this.#leaves.length) {
      // Merge thin neighbours so that deletes cannot leave a long list of tiny leaves.
      const next = this.#leaves[i + 1]!;
      if (leaf.keys.length + next.keys.length <= LEAF_KEYS_MAX / 2) {
        leaf.keys.push(...next.keys);
        leaf.records.push(...next.records);
        this.#leaves.splice(i + 1, 1);
      }
    }
    return true;
  }

  /**
   * A view of the current contents that later writes do not change: a fresh leaf list the
   * caller owns (it may drop entries from it), whose leaves it must not modify. Costs a copy of
   * the leaf list, not of the keys or records.
   */
  freeze(): Leaf[] {
    const view = this.#leaves.slice();
    this.#gen++;
    return view;
  }

  /**
   * Visits keys ≥ `from` in order, with their records, until `visit` returns false.
   */
  scanFrom(from: string, visit: (key: string, record: KvRecord) => boolean): void {
    const leaves = this.#leaves;
    if (leaves.length === 0) return;
    let i = this.#leafFor(from);
    let pos = lowerBoundIn(leaves[i]!.keys, from);
    for (; i < leaves.length; i++, pos = 0) {
      const leaf = leaves[i]!;
      for (; pos < leaf.keys.length; pos++) {
        if (!visit(leaf.keys[pos]!, leaf.records[pos]!)) return;
      }
    }
  }
}

/** Builds a {@linkcode SortedIndex} from keys that arrive in strictly increasing order. */
export class SortedIndexBuilder {
  #leaves: Leaf[] = [];
  #current: Leaf | null = null;
  #last: string | null = null;
  #size = 0;

  /** The last key added, or null. */
  get lastKey(): string | null {
    return this.#last;
  }

  /** Appends `key`, which must sort after every key added before. */
  push(key: string, record: KvRecord): void {
    assert(this.#last === null || this.#last < key, "SortedIndexBuilder: keys out of order");
    if (this.#current === null || this.#current.keys.length >= LEAF_KEYS_BUILD) {
      this.#current = { gen: 0, keys: [], records: [] };
      this.#leaves.push(this.#current);
    }
    this.#current.keys.push(key);
    this.#current.records.push(record);
    this.#last = key;
    this.#size++;
  }

  /** The finished index. The builder must not be used afterwards. */
  finish(): SortedIndex {
    return new SortedIndex(this.#leaves, this.#size);
  }
}
