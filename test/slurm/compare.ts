// test:slurm's check: the merged Megatron pair of a --world-size N run holds exactly the entries (megadocs and
// real documents) of the one-rank run, each rank contributed some, and the merge recorded N ranks.
// Usage: node --import tsx test/slurm/compare.ts MERGED_OUT SINGLE_OUT N
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rankDirName } from '../../lib/merge.js';
import { readMegatronPair } from '../helpers/megatron-reader.js';

const [merged, single, ranksArg] = process.argv.slice(2);
if (!merged || !single || !ranksArg) throw new Error('usage: compare.ts MERGED_OUT SINGLE_OUT N');
const ranks = Number(ranksArg);

const digest = (tokens: Uint32Array) =>
  Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength).toString('base64');
const fail = (message: string): never => {
  process.stderr.write(`test:slurm FAILED: ${message}\n`);
  process.exit(1);
};

const one = await readMegatronPair(join(single, 'megadocs'));
const all = await readMegatronPair(join(merged, 'megadocs'));
const manifest = JSON.parse(await readFile(join(merged, 'megadocs.json'), 'utf8'));
const rankDirs = Array.from({ length: ranks }, (_v, rank) => rankDirName(rank));
if (manifest.command !== 'merge' || JSON.stringify(manifest.ranks) !== JSON.stringify(rankDirs))
  fail(
    `${merged}/megadocs.json: command ${manifest.command}, ranks ${manifest.ranks}; expected a merge of ${rankDirs}`,
  );
const perRank = await Promise.all(rankDirs.map((dir) => readMegatronPair(join(merged, dir, 'megadocs'))));
const empty = perRank.findIndex((pair) => pair.entries.length === 0);
if (empty >= 0) fail(`${rankDirName(empty)} wrote no entry: the ranks did not split the input`);
const expected = one.entries.map(digest).sort();
const actual = all.entries.map(digest).sort();
if (actual.length !== expected.length || actual.some((value, at) => value !== expected[at]))
  fail(
    `the merged ${merged} holds ${actual.length} entries, the one-rank run ${expected.length}, and they differ`,
  );
const tokens = one.entries.reduce((sum, entry) => sum + entry.length, 0);
process.stdout.write(
  `test:slurm merged ${ranks} ranks (${perRank.map((pair) => pair.entries.length).join(' + ')} entries) = the one-rank run: ${expected.length} entries, ${tokens} tokens\n`,
);
