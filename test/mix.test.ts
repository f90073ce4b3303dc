// Mixing and shuffling after packing: the keyed permutation, the shuffle window, the disk spill of packed
// sequences, the mixture plan (weights and epochs) and the order sequences are written in.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import _ from 'highland';
import { afterAll, describe, expect, it } from 'vitest';
import { mixedOrder, mixtureSpec, orderedSequences, passIndex, planMix, streamOrder } from '../lib/mix.js';
import { type SequenceSpillReader, SequenceSpillWriter } from '../lib/sequence-spill.js';
import { keyedPermutation, seededIntegers, shuffleWindowStage } from '../lib/shuffle.js';
import type { Sequence } from '../lib/types.js';

const scratch = await mkdtemp(join(tmpdir(), 'megadocs-mix-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

function permutationOf(count: number, seed: number, salt: string): number[] {
  const permute = keyedPermutation(count, seed, salt);
  return Array.from({ length: count }, (_v, i) => permute(i));
}

describe('keyedPermutation', () => {
  it('is a bijection of [0, n) for sizes around the powers of 4 it rounds up to', () => {
    for (const count of [2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000, 4097]) {
      const seen = new Uint8Array(count);
      for (const value of permutationOf(count, 7, 'test')) {
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThan(count);
        seen[value] += 1;
      }
      expect(seen.every((times) => times === 1)).toBe(true);
    }
  });

  it('depends on seed and salt, and only on them', () => {
    const base = permutationOf(1000, 1, 'a');
    expect(permutationOf(1000, 1, 'a')).toEqual(base);
    expect(permutationOf(1000, 2, 'a')).not.toEqual(base);
    expect(permutationOf(1000, 1, 'b')).not.toEqual(base);
  });

  it('moves items far: the mean displacement is near n/3, as for a uniform shuffle', () => {
    const count = 20_000;
    const permute = keyedPermutation(count, 3, 'spread');
    let displacement = 0;
    let fixed = 0;
    for (let i = 0; i < count; i += 1) {
      displacement += Math.abs(permute(i) - i);
      if (permute(i) === i) fixed += 1;
    }
    expect(displacement / count / count).toBeGreaterThan(0.3);
    expect(displacement / count / count).toBeLessThan(0.37);
    expect(fixed).toBeLessThan(20);
  });

  it('works at sizes far beyond memory, index by index', () => {
    const count = 2 ** 40 + 12_345;
    const permute = keyedPermutation(count, 0, 'huge');
    const values = new Set(Array.from({ length: 1000 }, (_v, i) => permute(count - 1 - i)));
    expect(values.size).toBe(1000);
    for (const value of values) expect(value < count && Number.isInteger(value)).toBe(true);
  });
});

describe('shuffleWindowStage', () => {
  const run = (items: number[], window: number, seed: number, holds?: (n: number) => boolean) =>
    _(items)
      .through(shuffleWindowStage({ window, seed, salt: 'test', holds }))
      .collect()
      .toPromise(Promise);

  it('emits every item once, reordered within about the window, the same way for the same seed', async () => {
    const items = Array.from({ length: 2000 }, (_v, i) => i);
    const out = await run(items, 64, 5);
    expect([...out].sort((a, b) => a - b)).toEqual(items);
    expect(out).not.toEqual(items);
    expect(await run(items, 64, 5)).toEqual(out);
    expect(await run(items, 64, 6)).not.toEqual(out);
    const positions = new Map(out.map((item, position) => [item, position]));
    const meanShift =
      items.reduce((sum, item) => sum + Math.abs(positions.get(item)! - item), 0) / items.length;
    expect(meanShift).toBeGreaterThan(16);
    expect(meanShift).toBeLessThan(200);
  });

  it('lets items it does not hold pass in their own order', async () => {
    const items = Array.from({ length: 500 }, (_v, i) => i);
    const out = await run(items, 16, 1, (n) => n % 2 === 1);
    const evens = out.filter((n) => n % 2 === 0);
    expect(evens).toEqual(items.filter((n) => n % 2 === 0));
    expect(out.filter((n) => n % 2 === 1)).not.toEqual(items.filter((n) => n % 2 === 1));
  });

  it('draws uniformly: seeded integers cover their range evenly', () => {
    const draw = seededIntegers(9, 'uniform');
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i += 1) counts[draw(10)] += 1;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});

function sequence(seed: number, length: number, boundaries?: number[]): Sequence {
  const tokens = Uint32Array.from({ length }, (_v, i) => (seed * 7919 + i * 104_729) >>> 0);
  return boundaries ? { tokens, boundaries: Uint32Array.from(boundaries) } : { tokens };
}

function digest(value: Sequence): string {
  const hash = createHash('sha256').update(
    Buffer.from(value.tokens.buffer, value.tokens.byteOffset, value.tokens.byteLength),
  );
  if (value.boundaries)
    hash.update(
      Buffer.from(value.boundaries.buffer, value.boundaries.byteOffset, value.boundaries.byteLength),
    );
  return hash.digest('hex');
}

async function spillOf(name: string, sequences: Sequence[]): Promise<SequenceSpillReader> {
  const writer = await SequenceSpillWriter.create(join(scratch, name));
  for (const item of sequences) await writer.write(item);
  return writer.finish();
}

describe('sequence spill', () => {
  it('reads back every sequence, boundaries and a short tail included, in any order', async () => {
    const written = [
      ...Array.from({ length: 300 }, (_v, i) => sequence(i, 2048, [0, (i * 13) % 2048])),
      sequence(999, 17, [0]),
    ];
    const spill = await spillOf('mixed-lengths', written);
    expect(spill.sequences).toBe(301);
    expect(spill.tokens).toBe(300 * 2048 + 17);
    for (const index of [300, 0, 150, 7, 299]) {
      const back = spill.read(index);
      expect(digest(back)).toBe(digest(written[index]!));
      expect(back.tokens.length).toBe(written[index]!.tokens.length);
    }
    expect(() => spill.read(301)).toThrow(/no sequence 301 among 301/);
    await spill.close();
    expect((await stat(join(scratch, 'mixed-lengths.idx'))).size).toBe(8 * 302);
  });

  it('keeps sequences without boundaries as tokens only', async () => {
    const spill = await spillOf('plain', [sequence(1, 64), sequence(2, 64)]);
    const back = spill.read(1);
    expect(back.boundaries).toBeUndefined();
    expect(digest(back)).toBe(digest(sequence(2, 64)));
    await spill.close();
  });
});

describe('planMix', () => {
  it('sees the real stream E times and fills weight w with synthetic sequences (total = R x E / (1 - w))', () => {
    const plan = planMix({ real: 1000, synthetic: 5000 }, { realEpochs: 16, syntheticWeight: 0.75 });
    expect(plan.slots).toEqual({ real: 16_000, synthetic: 48_000 });
    expect(plan.total).toBe(Math.floor((1000 * 16) / (1 - 0.75)));
    expect(plan.syntheticWeight).toBeCloseTo(0.75, 10);
    expect(plan.syntheticEpochs).toBeCloseTo(9.6, 10);
  });

  it('writes every synthetic sequence once when no weight is given, and nothing real with E = 0', () => {
    expect(planMix({ real: 10, synthetic: 30 }, { realEpochs: 2 }).slots).toEqual({
      real: 20,
      synthetic: 30,
    });
    const syntheticOnly = planMix({ real: 10, synthetic: 30 }, { realEpochs: 0 });
    expect(syntheticOnly.slots).toEqual({ real: 0, synthetic: 30 });
    expect(syntheticOnly.syntheticWeight).toBe(1);
  });

  it('refuses a weight with no synthetic sequence to fill it, naming the option', () => {
    expect(() => planMix({ real: 10, synthetic: 0 }, { realEpochs: 1, syntheticWeight: 0.5 })).toThrow(
      /syntheticWeight: a synthetic weight of 0.5 needs synthetic sequences/,
    );
  });
});

describe('write order', () => {
  function refsOf(order: ReturnType<typeof mixedOrder>, total: number) {
    return Array.from({ length: total }, (_v, i) => order(i));
  }

  it('uses every slot exactly once: each real sequence E times, synthetic passes then an even partial pass', () => {
    const plan = planMix({ real: 7, synthetic: 10 }, { realEpochs: 3, syntheticWeight: 0.625 });
    expect(plan.slots).toEqual({ real: 21, synthetic: 35 });
    for (const shuffle of [true, false]) {
      const refs = refsOf(mixedOrder(plan, { shuffle, seed: 4 }), plan.total);
      const uses = (stream: string, index: number) =>
        refs.filter((ref) => ref.stream === stream && ref.index === index).length;
      for (let i = 0; i < 7; i += 1) expect(uses('real', i)).toBe(3);
      const syntheticUses = Array.from({ length: 10 }, (_v, i) => uses('synthetic', i));
      expect(syntheticUses.reduce((a, b) => a + b, 0)).toBe(35);
      expect(syntheticUses.every((n) => n === 3 || n === 4)).toBe(true);
    }
    expect(Array.from({ length: 5 }, (_v, k) => passIndex(30 + k, 35, 10))).toEqual([0, 2, 4, 6, 8]);
  });

  it('without shuffling keeps each stream in storage order and interleaves them evenly', () => {
    const plan = planMix({ real: 4, synthetic: 12 }, { realEpochs: 1 });
    const refs = refsOf(mixedOrder(plan, { shuffle: false, seed: 0 }), plan.total);
    expect(refs.filter((ref) => ref.stream === 'synthetic').map((ref) => ref.index)).toEqual(
      Array.from({ length: 12 }, (_v, i) => i),
    );
    expect(refs.filter((ref) => ref.stream === 'real').map((ref) => ref.index)).toEqual([0, 1, 2, 3]);
    const realPositions = refs.flatMap((ref, position) => (ref.stream === 'real' ? [position] : []));
    expect(realPositions).toEqual([0, 4, 8, 12]);
  });

  it('with shuffling depends on the seed; one stream alone is permuted by its own key', () => {
    const plan = planMix({ real: 50, synthetic: 50 }, { realEpochs: 1 });
    const a = refsOf(mixedOrder(plan, { shuffle: true, seed: 1 }), plan.total);
    expect(refsOf(mixedOrder(plan, { shuffle: true, seed: 1 }), plan.total)).toEqual(a);
    expect(refsOf(mixedOrder(plan, { shuffle: true, seed: 2 }), plan.total)).not.toEqual(a);
    const kept = streamOrder('real', 20, { shuffle: false, seed: 1 });
    expect(Array.from({ length: 20 }, (_v, i) => kept(i))).toEqual(Array.from({ length: 20 }, (_v, i) => i));
    const real = streamOrder('real', 20, { shuffle: true, seed: 1 });
    const synthetic = streamOrder('synthetic', 20, { shuffle: true, seed: 1 });
    expect(Array.from({ length: 20 }, (_v, i) => real(i))).not.toEqual(
      Array.from({ length: 20 }, (_v, i) => synthetic(i)),
    );
  });

  it('reads the mixture from the spills in output order', async () => {
    const real = [sequence(1, 32), sequence(2, 32)];
    const synthetic = [sequence(11, 32), sequence(12, 32), sequence(13, 32)];
    const spills = {
      real: await spillOf('order-real', real),
      synthetic: await spillOf('order-synthetic', synthetic),
    };
    const plan = planMix({ real: 2, synthetic: 3 }, { realEpochs: 2 });
    const order = mixedOrder(plan, { shuffle: true, seed: 3 });
    const seen: string[] = [];
    const out = (await orderedSequences(plan.total, order, spills, (ref) => seen.push(ref.stream))
      .collect()
      .toPromise(Promise)) as Sequence[];
    const expected = Array.from({ length: plan.total }, (_v, i) => order(i)).map((ref) =>
      digest((ref.stream === 'real' ? real : synthetic)[ref.index]!),
    );
    expect(out.map(digest)).toEqual(expected);
    expect(seen.filter((stream) => stream === 'real')).toHaveLength(4);
    await Promise.all([spills.real.close(), spills.synthetic.close()]);
  });

  it('describes separate streams for a trainer: samples each epoch takes (choose) and proportions', () => {
    const plan = planMix({ real: 100, synthetic: 400 }, { realEpochs: 4, syntheticWeight: 0.8 });
    const spec = mixtureSpec(plan, {
      real: { sequences: 100, tokens: 409_600 },
      synthetic: { sequences: 400, tokens: 1_638_400 },
    });
    const streams = spec.streams as Record<string, Record<string, number>>;
    expect(streams.real).toMatchObject({ local: 'real', samples: 100, choose: 400, repeat: 4 });
    expect(streams.synthetic).toMatchObject({ local: 'synthetic', samples: 400, choose: 1600, repeat: 4 });
    expect(streams.synthetic!.proportion).toBeCloseTo(0.8, 10);
    expect(spec.epochSamples).toBe(2000);
  });
});
