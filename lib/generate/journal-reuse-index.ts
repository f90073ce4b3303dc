// Where each reusable answer lies: request key -> (segment, byte offset, length), an open-addressing table on
// typed arrays (20 bytes a slot, ~40 MB for a million answers) instead of a Map of strings (~3x that).

/** Offsets are stored as segment * SEGMENT_SPAN + offset in one float64: exact below 2^53. */
const SEGMENT_SPAN = 2 ** 40;
const MAX_LOAD = 0.6;

export interface KeyLocation {
  segment: number;
  offset: number;
  length: number;
}

/**
 * Locations by request key (32 hex digits; the first 64 bits are stored, the reader checks the whole key in the
 * line it reads back). The first location added for a key wins.
 */
export class KeyLocations {
  private high: Uint32Array;
  private low: Uint32Array;
  private places: Float64Array;
  /** 0 marks an empty slot (a journal line is never empty). */
  private lengths: Uint32Array;
  private count = 0;

  constructor(capacity = 1 << 12) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(16, capacity / MAX_LOAD)));
    this.high = new Uint32Array(slots);
    this.low = new Uint32Array(slots);
    this.places = new Float64Array(slots);
    this.lengths = new Uint32Array(slots);
  }

  get size(): number {
    return this.count;
  }

  add(key: string, location: KeyLocation): void {
    if ((this.count + 1) / this.lengths.length > MAX_LOAD) this.grow();
    const high = Number.parseInt(key.slice(0, 8), 16) >>> 0;
    const low = Number.parseInt(key.slice(8, 16), 16) >>> 0;
    const slot = this.find(high, low);
    if (this.lengths[slot] !== 0) return;
    this.high[slot] = high;
    this.low[slot] = low;
    this.places[slot] = location.segment * SEGMENT_SPAN + location.offset;
    this.lengths[slot] = location.length;
    this.count += 1;
  }

  get(key: string): KeyLocation | undefined {
    const slot = this.find(
      Number.parseInt(key.slice(0, 8), 16) >>> 0,
      Number.parseInt(key.slice(8, 16), 16) >>> 0,
    );
    const length = this.lengths[slot]!;
    if (length === 0) return undefined;
    const place = this.places[slot]!;
    return { segment: Math.floor(place / SEGMENT_SPAN), offset: place % SEGMENT_SPAN, length };
  }

  /** The slot that holds the key, or the empty slot where it would go (linear probing; keys are hashes). */
  private find(high: number, low: number): number {
    const mask = this.lengths.length - 1;
    let slot = low & mask;
    while (this.lengths[slot] !== 0 && (this.high[slot] !== high || this.low[slot] !== low)) {
      slot = (slot + 1) & mask;
    }
    return slot;
  }

  private grow(): void {
    const { high, low, places, lengths } = this;
    const slots = lengths.length * 2;
    this.high = new Uint32Array(slots);
    this.low = new Uint32Array(slots);
    this.places = new Float64Array(slots);
    this.lengths = new Uint32Array(slots);
    for (let old = 0; old < lengths.length; old += 1) {
      if (lengths[old] === 0) continue;
      const slot = this.find(high[old]!, low[old]!);
      this.high[slot] = high[old]!;
      this.low[slot] = low[old]!;
      this.places[slot] = places[old]!;
      this.lengths[slot] = lengths[old]!;
    }
  }
}
