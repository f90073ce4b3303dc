// Seeded shuffles that need no memory proportional to the data: a keyed permutation of [0, n) for the
// sequence-level shuffle after packing, and a bounded shuffle window that scatters documents.
import { createHash } from 'node:crypto';
import { highland as _ } from './stream.js';
import type { Stage } from './types.js';

/** Largest count a permutation handles: indexes stay exact in a double (two halves of 26 bits). */
const MAX_PERMUTATION_SIZE = 2 ** 52;
const FEISTEL_ROUNDS = 6;

/** 32-bit words derived from (seed, salt): the keys of a permutation or the state of a generator. */
function keyWords(seed: number, salt: string, count: number): number[] {
  const digest = createHash('sha256').update(`megadocs-shuffle\u0000${seed}\u0000${salt}`).digest();
  return Array.from({ length: count }, (_v, i) => digest.readUInt32LE(4 * i));
}

/** murmur3's 32-bit finaliser: every input bit flips about half of the output bits. */
function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A bijection of [0, count) chosen by (seed, salt), computed per index in O(1) memory: a balanced Feistel
 * network on the smallest even-bit domain that holds `count` (at most 4x larger), cycle-walked back into
 * range. The same (count, seed, salt) always gives the same order.
 */
export function keyedPermutation(count: number, seed: number, salt: string): (index: number) => number {
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_PERMUTATION_SIZE) {
    throw new RangeError(`a permutation needs a count from 0 to 2^52, got ${count}`);
  }
  if (count <= 1) return (index) => index;
  let halfBits = 1;
  while (2 ** (2 * halfBits) < count) halfBits += 1;
  const half = 2 ** halfBits;
  const keys = keyWords(seed, salt, FEISTEL_ROUNDS);
  const encrypt = (value: number): number => {
    let left = Math.floor(value / half);
    let right = value % half;
    for (const key of keys) {
      const next = left ^ (mix32(right ^ key) % half);
      left = right;
      right = next;
    }
    return left * half + right;
  };
  return (index) => {
    let value = encrypt(index);
    while (value >= count) value = encrypt(value);
    return value;
  };
}

/** A seeded generator of uniform integers in [0, bound) (sfc32; the state comes from seed and salt). */
export function seededIntegers(seed: number, salt: string): (bound: number) => number {
  let [a, b, c, d] = keyWords(seed, salt, 4) as [number, number, number, number];
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i += 1) next();
  return (bound) => Math.floor((next() / 2 ** 32) * bound);
}

export interface ShuffleWindowOptions<T> {
  /** Items held at most; each output is drawn uniformly from the window. */
  window: number;
  seed: number;
  salt: string;
  /** Items this says false for pass straight through, neither held nor reordered among themselves. */
  holds?: (item: T) => boolean;
}

/**
 * A seeded shuffle window: the first `window` held items fill it, then each new one takes the place of a
 * randomly drawn item, which goes out; at the end the rest leave in a random order. An item moves at
 * most about `window` places on average, and memory is `window` items whatever the stream's length.
 */
export function shuffleWindowStage<T>(options: ShuffleWindowOptions<T>): Stage<T, T> {
  if (!Number.isInteger(options.window) || options.window < 1) {
    throw new RangeError(`a shuffle window holds at least 1 item, got ${options.window}`);
  }
  return (input) => {
    // Per stream: each stream the stage shuffles draws the same seeded sequence from its own window.
    const draw = seededIntegers(options.seed, options.salt);
    const held: T[] = [];
    return input.consume<T>((error, item, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      if (_.isNil(item)) {
        while (held.length > 0) {
          const at = draw(held.length);
          push(null, held[at]!);
          held[at] = held[held.length - 1]!;
          held.pop();
        }
        push(null, _.nil);
        return;
      }
      const value = item as T;
      if (options.holds && !options.holds(value)) {
        push(null, value);
      } else if (held.length < options.window) {
        held.push(value);
      } else {
        const at = draw(held.length);
        push(null, held[at]!);
        held[at] = value;
      }
      next();
    });
  };
}
