// A seeded reservoir sample (Algorithm R): k items drawn uniformly from a stream of unknown length in O(k)
// memory; the draws come from lib/shuffle.ts's seeded generator, so one seed always picks the same items (the report's samples, the plan's sampled documents).
import { seededIntegers } from './shuffle.js';

export class Reservoir<T> {
  readonly items: T[] = [];
  private seen = 0;
  private readonly draw: (bound: number) => number;

  constructor(
    private readonly size: number,
    seed: number,
    salt: string,
  ) {
    this.draw = seededIntegers(seed, salt);
  }

  /** Offers the next item of the stream; it is kept with probability size / (items offered so far). */
  offer(item: T): void {
    this.seen += 1;
    if (this.items.length < this.size) {
      this.items.push(item);
      return;
    }
    const slot = this.draw(this.seen);
    if (slot < this.size) this.items[slot] = item;
  }
}
