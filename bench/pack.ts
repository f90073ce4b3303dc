// bench/pack: tokens/s of the whole `megadocs pack` (read, tokenize on workers, pack, MDS + zstd, real data)
// divided by tokens/s of a plain single-threaded gpt-tokenizer `encode` loop over the same documents,
// measured in the same run; and peak RSS of pack at 1x and 8x the input. Usage: node dist/bench/pack.js
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { toAsyncIterable } from '../lib/stream.js';

const run = promisify(execFile);
const INPUT_FILES = [
  'wikipedia-2349.jsonl.zst',
  'fineweb-300.parquet',
  'fineweb-300.jsonl',
  'wikipedia-2349.jsonl',
];

function repositoryRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) directory = path.dirname(directory);
  return directory;
}

/** A directory holding `copies` links to each real input file. */
async function inputDir(root: string, data: string, copies: number): Promise<string> {
  const dir = path.join(root, `input-x${copies}`);
  await mkdir(dir, { recursive: true });
  for (let copy = 0; copy < copies; copy += 1) {
    for (const file of INPUT_FILES) await symlink(path.join(data, file), path.join(dir, `${copy}-${file}`));
  }
  return dir;
}

/** The baseline: the same documents, encoded one after another on this thread. */
async function encodeLoop(dir: string): Promise<{ tokens: number; seconds: number }> {
  const texts: string[] = [];
  for await (const doc of toAsyncIterable(readDocs(await expandInputs([dir])))) texts.push(doc.text);
  const options = { disallowedSpecial: new Set<string>() };
  const started = process.hrtime.bigint();
  let tokens = 0;
  for (const text of texts) tokens += encode(text, options).length + 1;
  return { tokens, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

interface PackRun {
  tokens: number;
  seconds: number;
  peakRssBytes: number;
}

async function packRun(cli: string, input: string, out: string, workers: number): Promise<PackRun> {
  const started = process.hrtime.bigint();
  const { stdout } = await run(
    process.execPath,
    [cli, 'pack', input, '--out', out, '--workers', String(workers), '--quiet', '--json'],
    {
      maxBuffer: 1 << 20,
    },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const summary = JSON.parse(stdout) as { tokens: number; peakRssBytes: number };
  return { tokens: summary.tokens, seconds, peakRssBytes: summary.peakRssBytes };
}

const root = repositoryRoot();
const cli = path.join(root, 'dist/bin/megadocs.js');
const data = path.resolve(root, '../shared/data');
const work = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-pack-'));
try {
  const small = await inputDir(work, data, 1);
  const large = await inputDir(work, data, 8);
  const baselines = [await encodeLoop(small), await encodeLoop(small)];
  const baseline = Math.max(...baselines.map((b) => b.tokens / b.seconds));
  const runs: Record<string, PackRun> = {};
  for (const [name, input, workers] of [
    ['1x, 2 workers', small, 2],
    ['8x, 2 workers', large, 2],
    ['8x, 1 worker', large, 1],
  ] as const) {
    runs[name] = await packRun(cli, input, path.join(work, `out-${name.replace(/\W+/g, '-')}`), workers);
  }
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  console.log(`baseline: single-threaded encode loop, o200k_base: ${(baseline / 1e6).toFixed(2)}M tok/s`);
  for (const [name, result] of Object.entries(runs)) {
    const tokensPerSecond = result.tokens / result.seconds;
    console.log(
      `megadocs pack ${name}: ${(result.tokens / 1e6).toFixed(1)}M tokens in ${result.seconds.toFixed(1)}s (process start included) = ` +
        `${(tokensPerSecond / 1e6).toFixed(2)}M tok/s, ratio ${(tokensPerSecond / baseline).toFixed(2)}x, peak RSS ${mb(result.peakRssBytes)}`,
    );
  }
  const growth = runs['8x, 2 workers'].peakRssBytes / runs['1x, 2 workers'].peakRssBytes;
  console.log(`peak RSS 8x / 1x input: ${growth.toFixed(2)}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
