// The highland interop helpers: lazy pulls from async iterables, cleanup on destroy, bounded concurrency, order.
import _ from 'highland';
import { describe, expect, it } from 'vitest';
import { drain, fromAsyncIterable, mapOrdered, mapUnordered, toAsyncIterable } from '../lib/stream.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('stream interop', () => {
  it('pulls from an async iterable only as downstream asks, and closes it on destroy', async () => {
    let produced = 0;
    let closed = false;
    async function* numbers() {
      try {
        for (let i = 0; ; i += 1) {
          produced += 1;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    const stream = fromAsyncIterable(numbers());
    const taken: number[] = [];
    for await (const value of toAsyncIterable(stream)) {
      taken.push(value);
      if (taken.length === 3) break;
    }
    await sleep(10);
    expect(taken).toEqual([0, 1, 2]);
    expect(produced).toBeLessThanOrEqual(4);
    expect(closed).toBe(true);
  });

  it('surfaces an iterator error as a stream error', async () => {
    async function* failing() {
      yield 1;
      throw new Error('boom at record 2');
    }
    await expect(drain(fromAsyncIterable(failing()))).rejects.toThrow('boom at record 2');
  });

  it('mapUnordered keeps at most `limit` calls in flight; mapOrdered keeps input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const work = async (n: number) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await sleep((n * 7) % 5);
      inFlight -= 1;
      return n;
    };
    const items = Array.from({ length: 40 }, (_v, i) => i);
    const unordered = (await _(items)
      .through(mapUnordered(4, work))
      .collect()
      .toPromise(Promise)) as number[];
    expect(peak).toBe(4);
    expect([...unordered].sort((a, b) => a - b)).toEqual(items);
    peak = 0;
    const ordered = (await _(items).through(mapOrdered(6, work)).collect().toPromise(Promise)) as number[];
    expect(ordered).toEqual(items);
    expect(peak).toBeLessThanOrEqual(6);
  });
});
