// bench/pack: tokens/s of the whole `megadocs pack` (read, tokenize on workers, pack, MDS + zstd, real data)
// divided by tokens/s of a plain single-threaded gpt-tokenizer `encode` loop over the same documents,
// measured in the same run; and peak RSS of pack at 1x, 8x and 16x the input (16x spans more than one
// default 64 MiB shard); and the time of `--format megatron` and `--format memmap` over that of MDS on the same
// input (`--formats`: that comparison alone). Usage: node dist/bench/pack.js [--formats] [node flags for pack]
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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

/**
 * The baseline: the same documents, encoded one after another on one thread, in a fresh process like each
 * pack run (gpt-tokenizer caches merges, so repeated copies of the inputs speed both up alike). Only the
 * encode loop is timed: reading the documents and loading the encoder are left out, in favour of the baseline.
 */
async function encodeLoop(dir: string): Promise<{ tokens: number; seconds: number }> {
  const { encode } = await import('gpt-tokenizer/encoding/o200k_base');
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
  shards: number;
  baseline: { tokens: number; seconds: number };
}

async function baselineRun(input: string): Promise<{ tokens: number; seconds: number }> {
  const { stdout } = await run(process.execPath, [fileURLToPath(import.meta.url), '--baseline', input]);
  return JSON.parse(stdout);
}

async function packRun(
  cli: string,
  nodeFlags: string[],
  input: string,
  out: string,
  workers: number,
): Promise<PackRun> {
  const started = process.hrtime.bigint();
  const { stdout } = await run(
    process.execPath,
    [...nodeFlags, cli, 'pack', input, '--out', out, '--workers', String(workers), '--quiet', '--json'],
    { maxBuffer: 1 << 20 },
  );
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const summary = JSON.parse(stdout) as {
    tokens: number;
    seconds: number;
    peakRssBytes: number;
    shards: number;
  };
  return {
    tokens: summary.tokens,
    seconds: Math.min(wall, summary.seconds),
    peakRssBytes: summary.peakRssBytes,
    shards: summary.shards,
    baseline: await baselineRun(input),
  };
}

/** Seconds of one `megadocs pack --format FORMAT` (the summary's own time: reading to the last file landed). */
async function formatRun(cli: string, nodeFlags: string[], input: string, out: string, format: string) {
  const { stdout } = await run(
    process.execPath,
    [
      ...nodeFlags,
      cli,
      'pack',
      input,
      '--out',
      out,
      '--workers',
      '2',
      '--format',
      format,
      '--quiet',
      '--json',
    ],
    { maxBuffer: 1 << 20 },
  );
  await rm(out, { recursive: true, force: true });
  return (JSON.parse(stdout) as { seconds: number }).seconds;
}

const FORMAT_REPEATS = 5;

/** Each format against MDS (default zstd:3) on the 8x input: runs interleaved, the median of each compared. */
async function compareFormats(cli: string, nodeFlags: string[], input: string, work: string): Promise<void> {
  const formats = ['mds', 'megatron', 'memmap'];
  const seconds: Record<string, number[]> = Object.fromEntries(formats.map((format) => [format, []]));
  for (let repeat = 0; repeat < FORMAT_REPEATS; repeat += 1) {
    for (const format of formats) {
      seconds[format]!.push(await formatRun(cli, nodeFlags, input, path.join(work, `out-${format}`), format));
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  const mds = median(seconds.mds!);
  for (const format of formats.slice(1)) {
    const ratio = median(seconds[format]!) / mds;
    console.log(
      `pack --format ${format} / --format mds, 8x input, median of ${FORMAT_REPEATS}: ` +
        `${median(seconds[format]!).toFixed(2)}s / ${mds.toFixed(2)}s = ${ratio.toFixed(3)} ` +
        `(${((ratio - 1) * 100).toFixed(1)}% added)`,
    );
  }
}

async function main(): Promise<void> {
  const root = repositoryRoot();
  const cli = path.join(root, 'dist/bin/megadocs.js');
  const data = path.resolve(root, '../shared/data');
  const work = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-pack-'));
  try {
    const formatsOnly = process.argv[2] === '--formats';
    const nodeFlags = process.argv.slice(formatsOnly ? 3 : 2);
    const large = await inputDir(work, data, 8);
    if (formatsOnly) {
      await compareFormats(cli, nodeFlags, large, work);
      return;
    }
    const small = await inputDir(work, data, 1);
    const larger = await inputDir(work, data, 16);
    // The pack runs go first, while this process is small: a child's peak RSS (ru_maxrss) starts from its
    // parent's RSS at fork, so the baseline's documents and encoder must not be loaded yet.
    const runs: Record<string, PackRun> = {};
    for (const [name, input, workers] of [
      ['1x, 2 workers', small, 2],
      ['8x, 2 workers', large, 2],
      ['16x, 2 workers', larger, 2],
      ['8x, 1 worker', large, 1],
    ] as const) {
      const out = path.join(work, `out-${name.replace(/\W+/g, '-')}`);
      runs[name] = await packRun(cli, nodeFlags, input, out, workers);
    }
    const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
    if (nodeFlags.length > 0) console.log(`pack processes run with: node ${nodeFlags.join(' ')}`);
    for (const [name, result] of Object.entries(runs)) {
      const tokensPerSecond = result.tokens / result.seconds;
      const baseline = result.baseline.tokens / result.baseline.seconds;
      console.log(
        `megadocs pack ${name}: ${(result.tokens / 1e6).toFixed(1)}M tokens in ${result.seconds.toFixed(1)}s = ` +
          `${(tokensPerSecond / 1e6).toFixed(2)}M tok/s; single-threaded encode loop on the same documents ` +
          `${(baseline / 1e6).toFixed(2)}M tok/s; ratio ${(tokensPerSecond / baseline).toFixed(2)}x; ` +
          `${result.shards} shard(s), peak RSS ${mb(result.peakRssBytes)}`,
      );
    }
    const base = runs['1x, 2 workers']!.peakRssBytes;
    console.log(
      `peak RSS 8x / 1x input: ${(runs['8x, 2 workers']!.peakRssBytes / base).toFixed(2)}, ` +
        `16x / 1x: ${(runs['16x, 2 workers']!.peakRssBytes / base).toFixed(2)}`,
    );
    await compareFormats(cli, nodeFlags, large, work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--baseline') {
  console.log(JSON.stringify(await encodeLoop(process.argv[3]!)));
} else {
  await main();
}
