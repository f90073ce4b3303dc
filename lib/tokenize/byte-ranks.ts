// Token ranks by exact bytes, for the byte-pair merge of pieces that are not single tokens: a flat
// open-addressing table over every token's bytes. gpt-tokenizer's own lookup decodes each byte run to a string
// first (a TextDecoder call per pair tried) and, because that decoder drops a leading U+FEFF, misses the
// tokens that start with one; this one compares bytes, so it is faster and finds them.

const EMPTY = -1;

/** FNV-1a over bytes, with a final mix so the low bits (the slot) depend on every byte. */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let hash = 0x811c9dc5;
  for (let index = from; index < to; index++) hash = Math.imul(hash ^ bytes[index]!, 0x01000193);
  return hash ^ (hash >>> 15);
}

export class ByteRanks {
  private readonly slots: Int32Array;
  private readonly mask: number;
  /** Token `rank`'s bytes are bytes[start[rank], start[rank + 1]). */
  private readonly start: Uint32Array;
  private readonly bytes: Uint8Array;

  /** `ranks[rank]` is the token's text (UTF-8) or its bytes; holes are ranks with no token. */
  constructor(ranks: readonly (string | readonly number[] | undefined)[]) {
    let room = 0;
    for (const entry of ranks) room += entry === undefined ? 0 : entry.length * 3;
    const bytes = new Uint8Array(room);
    const start = new Uint32Array(ranks.length + 1);
    const utf8 = new TextEncoder();
    let at = 0;
    for (let rank = 0; rank < ranks.length; rank++) {
      const entry = ranks[rank];
      if (typeof entry === 'string') at += utf8.encodeInto(entry, bytes.subarray(at)).written;
      else if (entry !== undefined) {
        bytes.set(entry, at);
        at += entry.length;
      }
      start[rank + 1] = at;
    }
    this.bytes = bytes.slice(0, at);
    this.start = start;
    let size = 1;
    while (size < ranks.length * 2) size *= 2;
    this.slots = new Int32Array(size).fill(EMPTY);
    this.mask = size - 1;
    for (let rank = 0; rank < ranks.length; rank++) {
      if (start[rank + 1] === start[rank]) continue;
      let slot = hashBytes(this.bytes, start[rank]!, start[rank + 1]!) & this.mask;
      while (this.slots[slot] !== EMPTY) slot = (slot + 1) & this.mask;
      this.slots[slot] = rank;
    }
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
