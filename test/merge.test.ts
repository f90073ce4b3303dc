// `megadocs merge` (library): per-rank MDS datasets joined into OUT/index.json with `rank-NNNNN/` basenames;
// 4 ranks over the planned shards + merge hold the same documents as 1 rank; incomplete outputs are refused.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { mergeRankIndexes, rankDirName } from '../lib/merge.js';
import { planShards } from '../lib/plan.js';
import { localShard } from '../lib/sources/local.js';
import { readDocs } from '../lib/sources/read.js';
import type { ShardRef } from '../lib/sources/types.js';
import { drain } from '../lib/stream.js';
import { SHARED_DATA } from './helpers/hub-repos.js';
import { readTextMds, writeTextMds } from './helpers/mds-text.js';

const INPUTS = [
  'fineweb-300.parquet',
  'fineweb-300.jsonl',
  'wikipedia-2349.jsonl',
  'wikipedia-2349.jsonl.zst',
];
let out: string;

beforeEach(async () => {
  out = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-merge-'));
});

async function texts(shards: ShardRef[]): Promise<string[]> {
  const result: string[] = [];
  await drain(readDocs(shards), (doc) => {
    result.push(doc.text);
  });
  return result;
}

async function inputShards(): Promise<ShardRef[]> {
  return Promise.all(
    INPUTS.map(async (name) => {
      const file = path.join(SHARED_DATA, name);
      return localShard(file, (await fs.stat(file)).size);
    }),
  );
}

describe('mergeRankIndexes', () => {
  it('4 ranks + merge hold the same documents as 1 rank', async () => {
    const shards = await inputShards();
    const single = path.join(out, 'single');
    await writeTextMds(single, await texts(planShards(shards, { rank: 0, worldSize: 1 })), 500);
    const ranked = path.join(out, 'ranked');
    for (let rank = 0; rank < 4; rank += 1) {
      const share = planShards(shards, { rank, worldSize: 4 });
      await writeTextMds(path.join(ranked, rankDirName(rank)), await texts(share), 500);
    }
    const summary = await mergeRankIndexes(ranked);
    const merged = await readTextMds(ranked);
    const expected = await readTextMds(single);
    expect(summary.ranks).toBe(4);
    expect(summary.samples).toBe(expected.length);
    expect(merged.length).toBe(expected.length);
    expect([...merged].sort()).toEqual([...expected].sort());
  });

  it('prefixes basenames with rank-NNNNN/ and keeps every other key of each shard entry as it was', async () => {
    await writeTextMds(path.join(out, 'rank-00000'), ['a', 'b', 'c'], 2);
    await writeTextMds(path.join(out, 'rank-00001'), ['d'], 2);
    await mergeRankIndexes(out);
    const merged = JSON.parse(await fs.readFile(path.join(out, 'index.json'), 'utf8'));
    const originals = [
      ...JSON.parse(await fs.readFile(path.join(out, 'rank-00000/index.json'), 'utf8')).shards,
      ...JSON.parse(await fs.readFile(path.join(out, 'rank-00001/index.json'), 'utf8')).shards,
    ];
    expect(merged.version).toBe(2);
    expect(merged.shards.map((shard: { raw_data: { basename: string } }) => shard.raw_data.basename)).toEqual(
      ['rank-00000/shard.00000.mds', 'rank-00000/shard.00001.mds', 'rank-00001/shard.00000.mds'],
    );
    for (const [position, shard] of merged.shards.entries()) {
      expect(Object.keys(shard)).toEqual(Object.keys(originals[position]));
      expect({ ...shard, raw_data: originals[position].raw_data }).toEqual(originals[position]);
    }
    const first = await fs.readFile(path.join(out, 'index.json'));
    await mergeRankIndexes(out);
    expect(Buffer.compare(first, await fs.readFile(path.join(out, 'index.json')))).toBe(0);
  });

  it('names missing ranks, unfinished ranks and missing shard files', async () => {
    await expect(mergeRankIndexes(out)).rejects.toThrow(/no rank-NNNNN\/ folders to merge/);
    await writeTextMds(path.join(out, 'rank-00000'), ['a'], 1);
    await writeTextMds(path.join(out, 'rank-00002'), ['b'], 1);
    await expect(mergeRankIndexes(out)).rejects.toThrow(
      /ranks rank-00001 have no output folder.*Run \(or rerun\) those ranks/,
    );
    await expect(mergeRankIndexes(out, { worldSize: 2 })).rejects.toThrow(
      /rank-00002 lie beyond --world-size 2/,
    );
    await writeTextMds(path.join(out, 'rank-00003'), ['d'], 1);
    await expect(mergeRankIndexes(out, { worldSize: 5 })).rejects.toThrow(
      /ranks rank-00001, rank-00004 have no output folder/,
    );
    await fs.rm(path.join(out, 'rank-00003'), { recursive: true });
    await fs.mkdir(path.join(out, 'rank-00001'));
    await expect(mergeRankIndexes(out)).rejects.toThrow(/rank-00001\/index.json: this rank has not finished/);
    await writeTextMds(path.join(out, 'rank-00001'), ['c'], 1);
    await fs.rm(path.join(out, 'rank-00002/shard.00000.mds'));
    await expect(mergeRankIndexes(out)).rejects.toThrow(
      /rank-00002\/index.json: shard file shard.00000.mds listed in the index is missing/,
    );
    await expect(fs.stat(path.join(out, 'index.json'))).rejects.toThrow();
  });
});
