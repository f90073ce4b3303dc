// The slot array of the tokenizer's open-addressing tables (piece-encoder.ts, byte-ranks.ts): a power-of-two
// Int32Array in shared memory, at most half full, entries placed by linear probing from their hash.

/** A free slot. */
export const EMPTY = -1;

/** Free slots for `entries` entries at most, in shared memory (twice as many, rounded up to a power of two). */
export function sharedSlots(entries: number): Int32Array {
  let size = 1;
  while (size < entries * 2) size *= 2;
  return new Int32Array(new SharedArrayBuffer(4 * size)).fill(EMPTY);
}

/** Puts `entry` in the first free slot from its hash on (linear probing). */
export function occupySlot(slots: Int32Array, hash: number, entry: number): void {
  const mask = slots.length - 1;
  let slot = hash & mask;
  while (slots[slot] !== EMPTY) slot = (slot + 1) & mask;
  slots[slot] = entry;
}
