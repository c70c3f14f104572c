// backends/snapshot-map: an immutable ReadonlyMap whose updated copy costs O(changes), not O(size)
// (issue 11 item 3: no whole-map copy per watch event), so every snapshot a backend emits stays immutable (the
// store diffs the previous snapshot's map against the new one) without copying 10k services per event. Used by
// the Kubernetes and Consul backends.
//
// Shape: a fixed two-level trie of 32 × 32 slots keyed by a 10-bit string hash, each slot a small Map. An update
// copies the root (32 pointers), each touched middle node (32 pointers) and each touched slot Map (size/1024
// entries on average); every untouched node is shared with the previous version, which is never mutated.

type Slot<V> = ReadonlyMap<string, V>;
type Mid<V> = readonly (Slot<V> | undefined)[];

const FANOUT = 32;
const EMPTY_ROOT: readonly undefined[] = Object.freeze(new Array<undefined>(FANOUT).fill(undefined));

/** FNV-1a over UTF-16 code units, folded to 10 bits (5 for the root, 5 for the middle node). */
function hash10(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 10) ^ (h >>> 20)) & 0x3ff;
}

export class SnapshotMap<V> implements ReadonlyMap<string, V> {
  readonly #root: readonly (Mid<V> | undefined)[];
  readonly size: number;

  private constructor(root: readonly (Mid<V> | undefined)[], size: number) {
    this.#root = root;
    this.size = size;
  }

  static empty<V>(): SnapshotMap<V> {
    return new SnapshotMap<V>(EMPTY_ROOT, 0);
  }

  get(key: string): V | undefined {
    const h = hash10(key);
    return this.#root[h >>> 5]?.[h & 31]?.get(key);
  }

  has(key: string): boolean {
    const h = hash10(key);
    return this.#root[h >>> 5]?.[h & 31]?.has(key) ?? false;
  }

  /**
   * A new map with `changes` applied (a value sets the key, undefined deletes it); this one is left untouched.
   * Returns this very map when nothing changes.
   */
  with(changes: ReadonlyMap<string, V | undefined>): SnapshotMap<V> {
    if (changes.size === 0) return this;
    let root: (Mid<V> | undefined)[] | null = null;
    const mids = new Map<number, (Slot<V> | undefined)[]>();
    const slots = new Map<number, Map<string, V>>();
    let size = this.size;
    for (const [key, value] of changes) {
      const h = hash10(key);
      let slot = slots.get(h);
      if (!slot) {
        const old = this.#root[h >>> 5]?.[h & 31];
        if (value === undefined && !old?.has(key)) continue; // deleting an absent key: nothing to copy
        slot = new Map(old);
        slots.set(h, slot);
        root ??= [...this.#root];
        let mid = mids.get(h >>> 5);
        if (!mid) {
          mid = [...(this.#root[h >>> 5] ?? EMPTY_ROOT)];
          mids.set(h >>> 5, mid);
          root[h >>> 5] = mid;
        }
        mid[h & 31] = slot;
      }
      const had = slot.has(key);
      if (value === undefined) {
        if (had) { slot.delete(key); size--; }
      } else {
        slot.set(key, value);
        if (!had) size++;
      }
    }
    if (root === null) return this;
    // Empty slots are dropped so an emptied map iterates nothing and frees its nodes.
    for (const [h, slot] of slots) if (slot.size === 0) mids.get(h >>> 5)![h & 31] = undefined;
    return new SnapshotMap<V>(root, size);
  }

  *entries(): MapIterator<[string, V]> {
    for (const mid of this.#root) {
      if (!mid) continue;
      for (const slot of mid) if (slot) yield* slot.entries();
    }
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(cb: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this);
  }
}
