// The byte-pair merge of a tokenizer.json BPE model: a piece's symbols are merged pair by pair, the pair
// of lowest merge rank first (leftmost among equals), as the Hugging Face library does; a pair missing from
// the merge list is never merged, even when the two symbols together are a token. Merges live in a flat
// open-addressing table keyed by the pair of ids, in shared memory for every tokenizer worker.
import { EMPTY, occupySlot, sharedSlots } from './hash-slots.js';

/** The merge list as plain arrays in shared memory: merge `rank` joins left[rank] and right[rank] into merged[rank]. */
export interface MergeListArrays {
  slots: Int32Array;
  left: Uint32Array;
  right: Uint32Array;
  merged: Uint32Array;
}

const NO_MERGE = 0x7fffffff;

function hashPair(left: number, right: number): number {
  const hash = Math.imul(left ^ Math.imul(right, 0x9e3779b1), 0x85ebca6b);
  return hash ^ (hash >>> 15);
}

/** `merges[rank]` = [left id, right id, merged id]. */
export function buildMergeList(merges: readonly (readonly [number, number, number])[]): MergeListArrays {
  const shared = () => new Uint32Array(new SharedArrayBuffer(4 * merges.length));
  const arrays: MergeListArrays = {
    slots: sharedSlots(merges.length),
    left: shared(),
    right: shared(),
    merged: shared(),
  };
  merges.forEach(([left, right, merged], rank) => {
    arrays.left[rank] = left;
    arrays.right[rank] = right;
    arrays.merged[rank] = merged;
  });
  // A pair listed twice keeps its first (lowest) rank, as the library's map of merges does when built in order.
  const seen = new Set<number>();
  merges.forEach(([left, right], rank) => {
    const key = left * 2 ** 24 + right;
    if (seen.has(key)) return;
    seen.add(key);
    occupySlot(arrays.slots, hashPair(left, right), rank);
  });
  return arrays;
}

export class MergeList {
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly left: Uint32Array;
  private readonly right: Uint32Array;
  private readonly merged: Uint32Array;
  /** Per position of the piece being merged: the rank of the pair it starts (NO_MERGE when none). */
  private ranks = new Int32Array(64);

  constructor(arrays: MergeListArrays) {
    this.slots = arrays.slots;
    this.mask = arrays.slots.length - 1;
    this.left = arrays.left;
    this.right = arrays.right;
    this.merged = arrays.merged;
  }

  /** The rank of merging `left` then `right`, or NO_MERGE. */
  private rankOf(left: number, right: number): number {
    for (let slot = hashPair(left, right) & this.mask; ; slot = (slot + 1) & this.mask) {
      const rank = this.slots[slot]!;
      if (rank === EMPTY) return NO_MERGE;
      if (this.left[rank] === left && this.right[rank] === right) return rank;
    }
  }

  /** Merges the `count` symbols in `ids` in place; returns how many remain. */
  mergeInPlace(ids: Uint32Array, count: number): number {
    if (this.ranks.length < count) this.ranks = new Int32Array(count * 2);
    const ranks = this.ranks;
    for (let at = 0; at + 1 < count; at++) ranks[at] = this.rankOf(ids[at]!, ids[at + 1]!);
    let length = count;
    while (length > 1) {
      let best = NO_MERGE;
      let bestAt = -1;
      for (let at = 0; at + 1 < length; at++) {
        if (ranks[at]! < best) {
          best = ranks[at]!;
          bestAt = at;
        }
      }
      if (bestAt < 0) break;
      ids[bestAt] = this.merged[best]!;
      ids.copyWithin(bestAt + 1, bestAt + 2, length);
      ranks.copyWithin(bestAt + 1, bestAt + 2, length - 1);
      length -= 1;
      if (bestAt > 0) ranks[bestAt - 1] = this.rankOf(ids[bestAt - 1]!, ids[bestAt]!);
      if (bestAt + 1 < length) ranks[bestAt] = this.rankOf(ids[bestAt]!, ids[bestAt + 1]!);
    }
    return length;
  }
}
