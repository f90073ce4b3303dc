// flattenArrays (lib/stream.ts): arrays of a highland stream as their items, in order, like `sequence()` for
// arrays; errors pass through in place.
import { describe, expect, it } from 'vitest';
import { flattenArrays, fromAsyncIterable, highland } from '../lib/stream.js';

function collect<T>(stream: Highland.Stream<T>): Promise<Array<T | string>> {
  return new Promise((resolve) => {
    const seen: Array<T | string> = [];
    stream
      .errors((error) => {
        seen.push(`error: ${error.message}`);
      })
      .each((item) => {
        seen.push(item);
      })
      .done(() => resolve(seen));
  });
}

describe('flattenArrays', () => {
  it('gives the items of each array in order, skipping empty arrays', async () => {
    const batches = [[1, 2], [], [3], [4, 5, 6]];
    expect(await collect(fromAsyncIterable(batches).through(flattenArrays<number>()))).toEqual([
      1, 2, 3, 4, 5, 6,
    ]);
  });

  it('passes an error on where it came and goes on', async () => {
    const source = highland<number[]>((push) => {
      push(null, [1]);
      push(new Error('bad batch'));
      push(null, [2, 3]);
      push(null, highland.nil);
    });
    expect(await collect(source.through(flattenArrays<number>()))).toEqual([1, 'error: bad batch', 2, 3]);
  });

  it('keeps backpressure: a consumer that takes two items pulls only what it needs', async () => {
    let pulled = 0;
    async function* batches() {
      for (let i = 0; i < 100; i += 1) {
        pulled += 1;
        yield [i * 2, i * 2 + 1];
      }
    }
    expect(await collect(fromAsyncIterable(batches()).through(flattenArrays<number>()).take(2))).toEqual([
      0, 1,
    ]);
    expect(pulled).toBeLessThanOrEqual(2);
  });
});
