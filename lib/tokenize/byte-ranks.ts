// Token ranks by exact bytes, for the byte-pair merge of pieces that are not single tokens: a flat
// open-addressing table over every token's bytes, in shared memory. gpt-tokenizer's own lookup decodes each
// byte run to a string first (a TextDecoder call per pair tried) and, because that decoder drops a leading
// U+FEFF, misses the tokens that start with one; this one compares bytes, so it is faster and finds them.
import { EMPTY, occupySlot, sharedSlots } from './hash-slots.js';

/** FNV-1a over bytes, with a final mix so the low bits (the slot) depend on every byte. */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let hash = 0x811c9dc5;
  for (let index = from; index < to; index++) hash = Math.imul(hash ^ bytes[index]!, 0x01000193);
  return hash ^ (hash >>> 15);
}

/** A ByteRanks table as plain arrays in shared memory: built once, read by every tokenizer worker. */
export interface ByteRankArrays {
  slots: Int32Array;
  /** Token `rank`'s bytes are bytes[start[rank], start[rank + 1]). */
  start: Uint32Array;
  bytes: Uint8Array;
}

/** `ranks[rank]` is the token's text (UTF-8) or its bytes; holes are ranks with no token. */
export function buildByteRanks(ranks: readonly (string | readonly number[] | undefined)[]): ByteRankArrays {
  let room = 0;
  for (const entry of ranks) room += entry === undefined ? 0 : entry.length * 3;
  const scratch = new Uint8Array(room);
  const start = new Uint32Array(new SharedArrayBuffer(4 * (ranks.length + 1)));
  const utf8 = new TextEncoder();
  let at = 0;
  for (let rank = 0; rank < ranks.length; rank++) {
    const entry = ranks[rank];
    if (typeof entry === 'string') at += utf8.encodeInto(entry, scratch.subarray(at)).written;
    else if (entry !== undefined) {
      scratch.set(entry, at);
      at += entry.length;
    }
    start[rank + 1] = at;
  }
  const bytes = new Uint8Array(new SharedArrayBuffer(at));
  bytes.set(scratch.subarray(0, at));
  const slots = sharedSlots(ranks.length);
  for (let rank = 0; rank < ranks.length; rank++) {
    if (start[rank + 1] !== start[rank])
      occupySlot(slots, hashBytes(bytes, start[rank]!, start[rank + 1]!), rank);
  }
  return { slots, start, bytes };
}

export class ByteRanks {
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly start: Uint32Array;
  private readonly bytes: Uint8Array;

  constructor(arrays: ByteRankArrays) {
    this.slots = arrays.slots;
    this.mask = arrays.slots.length - 1;
    this.start = arrays.start;
    this.bytes = arrays.bytes;
  }

  /** The rank of the token whose bytes are exactly `key`, or undefined. */
  get(key: Uint8Array): number | undefined {
    for (let slot = hashBytes(key, 0, key.length) & this.mask; ; slot = (slot + 1) & this.mask) {
      const rank = this.slots[slot]!;
      if (rank === EMPTY) return undefined;
      const from = this.start[rank]!;
      if (this.start[rank + 1]! - from !== key.length) continue;
      let index = 0;
      while (index < key.length && this.bytes[from + index] === key[index]) index++;
      if (index === key.length) return rank;
    }
  }
}
