// Ranks: where rank/world size come from (flags, Slurm arrays and tasks, Kubernetes Indexed Jobs), and the
// shard plan: every shard read by exactly one rank, balanced by size, so 4 ranks read what 1 rank reads.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubClient } from '../lib/hub/client.js';
import { expandHubInput } from '../lib/hub/shard.js';
import { assignShards, planShards } from '../lib/plan.js';
import { resolveRank } from '../lib/ranks.js';
import { readDocs } from '../lib/sources/read.js';
import type { ShardRef } from '../lib/sources/types.js';
import { drain } from '../lib/stream.js';
import { SHARED_DATA, sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';

describe('resolveRank', () => {
  it('takes --rank/--world-size over the environment', () => {
    expect(
      resolveRank({ rank: 2, worldSize: 4 }, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '8' }),
    ).toEqual({
      rank: 2,
      worldSize: 4,
      source: '--rank/--world-size',
    });
  });

  it('reads a Slurm job array, counting from SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP', () => {
    const env = {
      SLURM_ARRAY_TASK_ID: '7',
      SLURM_ARRAY_TASK_MIN: '1',
      SLURM_ARRAY_TASK_STEP: '2',
      SLURM_ARRAY_TASK_COUNT: '5',
    };
    expect(resolveRank({}, env)).toMatchObject({ rank: 3, worldSize: 5 });
    expect(resolveRank({}, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).toMatchObject({
      rank: 3,
      worldSize: 4,
    });
  });

  it('reads Slurm tasks, and combines them with an array when a step runs several', () => {
    expect(resolveRank({}, { SLURM_PROCID: '5', SLURM_NTASKS: '8' })).toMatchObject({
      rank: 5,
      worldSize: 8,
    });
    const both = {
      SLURM_ARRAY_TASK_ID: '2',
      SLURM_ARRAY_TASK_COUNT: '3',
      SLURM_PROCID: '1',
      SLURM_NTASKS: '4',
    };
    expect(resolveRank({}, both)).toMatchObject({ rank: 9, worldSize: 12 });
    expect(resolveRank({}, { SLURM_PROCID: '0', SLURM_NTASKS: '1' })).toMatchObject({
      rank: 0,
      worldSize: 1,
      source: 'default',
    });
  });

  it('reads JOB_COMPLETION_INDEX with the size from --world-size', () => {
    expect(resolveRank({ worldSize: 6 }, { JOB_COMPLETION_INDEX: '4' })).toMatchObject({
      rank: 4,
      worldSize: 6,
    });
    expect(() => resolveRank({}, { JOB_COMPLETION_INDEX: '4' })).toThrow(
      /JOB_COMPLETION_INDEX: .*Pass --world-size/,
    );
  });

  it('defaults to rank 0 of 1', () => {
    expect(resolveRank({}, {})).toEqual({ rank: 0, worldSize: 1, source: 'default' });
  });

  it('explains bad or contradictory values', () => {
    expect(() => resolveRank({ rank: 1 }, {})).toThrow(/--rank needs --world-size/);
    expect(() => resolveRank({ rank: 4, worldSize: 4 }, {})).toThrow(/rank 4 is outside 0..3/);
    expect(() => resolveRank({}, { SLURM_ARRAY_TASK_ID: 'x', SLURM_ARRAY_TASK_COUNT: '2' })).toThrow(
      /SLURM_ARRAY_TASK_ID="x" is not a whole number/,
    );
    expect(() => resolveRank({}, { SLURM_ARRAY_TASK_ID: '1' })).toThrow(/SLURM_ARRAY_TASK_COUNT is not/);
    expect(() =>
      resolveRank({ worldSize: 3 }, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4' }),
    ).toThrow(
      /--world-size 3 disagrees with SLURM_ARRAY_TASK_ID\/SLURM_ARRAY_TASK_COUNT, which gives 4 workers/,
    );
  });
});

describe('planShards', () => {
  const sizes = [900, 10, 350, 350, 700, 60, 5, 420, 333, 128, 64, 1000, 1];
  const shards = sizes.map((size, index) => ({ name: `s${String(index).padStart(2, '0')}`, size }));

  it('gives each shard to exactly one rank, the same way whatever the input order', () => {
    const shares = assignShards(shards, 4);
    expect(
      shares
        .flat()
        .map((shard) => shard.name)
        .sort(),
    ).toEqual(shards.map((shard) => shard.name));
    const reversed = assignShards([...shards].reverse(), 4);
    expect(reversed.map((share) => share.map((shard) => shard.name))).toEqual(
      shares.map((share) => share.map((shard) => shard.name)),
    );
    for (let rank = 0; rank < 4; rank += 1)
      expect(planShards(shards, { rank, worldSize: 4 })).toEqual(shares[rank]);
  });

  it('balances by size: no two ranks differ by more than the largest shard', () => {
    const loads = assignShards(shards, 4).map((share) => share.reduce((sum, shard) => sum + shard.size, 0));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(Math.max(...sizes));
    const roundRobin = [0, 1, 2, 3].map((rank) =>
      sizes.filter((_, index) => index % 4 === rank).reduce((a, b) => a + b, 0),
    );
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThan(
      Math.max(...roundRobin) - Math.min(...roundRobin),
    );
  });

  it('leaves ranks empty when there are fewer shards than ranks', () => {
    const shares = assignShards(shards.slice(0, 2), 4);
    expect(shares.map((share) => share.length).sort()).toEqual([0, 0, 1, 1]);
  });
});

describe('4 ranks read what 1 rank reads (Hub shards)', () => {
  let server: HubServer;
  beforeAll(async () => {
    server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 3) });
  });
  afterAll(() => server.close());

  async function documentKeys(shards: ShardRef[]): Promise<string[]> {
    const keys: string[] = [];
    await drain(readDocs(shards), (doc) => {
      keys.push(`${doc.meta?.source}\t${doc.id}\t${createHash('sha1').update(doc.text).digest('hex')}`);
    });
    return keys;
  }

  it('the union of the 4 ranks is the 1-rank document set, with no document read twice', async () => {
    const client = createHubClient({ endpoint: server.url, token: TEST_TOKEN });
    const shards = [
      ...(await expandHubInput('hf://datasets/HuggingFaceFW/fineweb/data/*/*.parquet', { client })),
      ...(await expandHubInput('hf://datasets/mlfoundations/dclm-baseline-1.0', { client })),
    ];
    const single = await documentKeys(planShards(shards, { rank: 0, worldSize: 1 }));
    const perRank = await Promise.all(
      [0, 1, 2, 3].map((rank) => documentKeys(planShards(shards, { rank, worldSize: 4 }))),
    );
    expect(perRank.every((keys) => keys.length > 0)).toBe(true);
    const union = perRank.flat();
    expect(union.length).toBe(single.length);
    expect(new Set(union).size).toBe(union.length);
    expect([...union].sort()).toEqual([...single].sort());
  });
});
