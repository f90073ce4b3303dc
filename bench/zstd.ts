// zstd speed on a real token shard: zstdCompressFrame (zstd-codec, one frame + content size) per level vs the
// zstd CLI single-threaded (the baseline, measured in the same run), the MDS sink with and without zstd
// (compression runs on a worker thread: the caller's busy time shows what it still costs the pipeline), and the
// sink's peak RSS growth per shard size, each in a fresh process (flat = memory independent of the shard size).
// Usage: node dist/bench/zstd.js [shardMiB]
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import _ from 'highland';
import { zstdCompressFrame, zstdDecompress } from '../lib/codecs/zstd.js';
import { mdsSink } from '../lib/sinks/mds.js';
import { encodeNdarray, encodeShard, joinSample } from '../lib/sinks/mds-format.js';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import type { Sequence } from '../lib/types.js';

function repositoryRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) directory = path.dirname(directory);
  return directory;
}

const SEQ_LEN = 2048;
const VOCAB = 100_277;

/** Wikipedia, FineWeb and War and Peace tokenized with cl100k_base, cut into 2048-token sequences. */
async function realSequences(dataDirectory: string): Promise<Uint32Array[]> {
  const encoder = await loadEncoder('cl100k_base');
  const ids: number[] = [];
  for (const file of ['wikipedia-2349.jsonl', 'fineweb-300.jsonl']) {
    const lines = (await readFile(path.join(dataDirectory, file), 'utf8')).split('\n').filter(Boolean);
    for (const line of lines) ids.push(...encoder.encode(JSON.parse(line).text as string), encoder.eosId);
  }
  for (const paragraph of (await readFile(path.join(dataDirectory, 'war-and-peace.txt'), 'utf8')).split(
    '\n\n',
  )) {
    ids.push(...encoder.encode(`${paragraph}\n\n`));
  }
  const sequences: Uint32Array[] = [];
  for (let start = 0; start + SEQ_LEN <= ids.length; start += SEQ_LEN) {
    sequences.push(Uint32Array.from(ids.slice(start, start + SEQ_LEN)));
  }
  return sequences;
}

function seconds(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function secondsAsync(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const mbps = (bytes: number, time: number) => (bytes / 1e6 / time).toFixed(1);

async function main(): Promise<void> {
  // First, while this process is small: a child's peak RSS (ru_maxrss) starts from its parent's RSS at fork.
  console.log('sink memory: one shard of N MiB written with mdsSink (zstd, sha1), each in a fresh process');
  const growth: number[] = [];
  for (const shardMiB of SINK_SHARD_MIB) {
    const { stdout } = await promisify(execFile)(process.execPath, [
      fileURLToPath(import.meta.url),
      SINK_MEMORY_CHILD,
      String(shardMiB),
    ]);
    const child = JSON.parse(stdout) as {
      rssBefore: number;
      peakRss: number;
      shards: number;
      seconds: number;
    };
    growth.push(child.peakRss - child.rssBefore);
    console.log(
      `  ${String(shardMiB).padStart(4)} MiB shard: RSS ${(child.rssBefore / 2 ** 20).toFixed(0)} MB before, ` +
        `peak ${(child.peakRss / 2 ** 20).toFixed(0)} MB, growth ${(growth.at(-1)! / 2 ** 20).toFixed(0)} MB (${child.seconds.toFixed(1)} s)`,
    );
  }
  console.log(
    `  growth at ${SINK_SHARD_MIB.at(-1)} MiB / at ${SINK_SHARD_MIB[0]} MiB: ${(growth.at(-1)! / growth[0]!).toFixed(2)}`,
  );

  const shardMiB = Number(process.argv[2] ?? 64);
  const sequences = await realSequences(path.resolve(repositoryRoot(), '../shared/data'));
  const wanted = Math.ceil((shardMiB * 2 ** 20) / (4 * SEQ_LEN + 7));
  // Copies past the first are shifted in id space, so no compressor finds them as long repeats.
  const shifted = (at: number) => {
    const copy = Math.floor(at / sequences.length);
    const tokens = sequences[at % sequences.length]!;
    return copy === 0 ? tokens : tokens.map((id) => (id + copy * 9973) % VOCAB);
  };
  const samples = Array.from({ length: wanted }, (_v, at) =>
    joinSample([encodeNdarray(shifted(at), false)], [null]),
  );
  const shard = encodeShard(samples, Buffer.from('{}'));
  console.log(
    `raw MDS shard: ${(shard.length / 2 ** 20).toFixed(1)} MiB, ${wanted} samples of ${SEQ_LEN} cl100k tokens (${sequences.length} distinct)`,
  );

  const cli = spawnSync('zstd', ['--version']).status === 0;
  console.log('level  zstd-codec MB/s  ratio   zstd CLI -T1 MB/s  ratio   codec/CLI speed');
  for (const level of [1, 3, 6, 9]) {
    let frame: Buffer = Buffer.alloc(0);
    const codecTime = await secondsAsync(async () => {
      frame = await zstdCompressFrame(shard, level);
    });
    let cliFrame: Buffer = Buffer.alloc(0);
    const cliTime = cli
      ? seconds(() => {
          cliFrame = execFileSync('zstd', [`-${level}`, '-T1', '-c', '-q'], {
            input: shard,
            maxBuffer: 2 ** 30,
          });
        })
      : Number.NaN;
    console.log(
      `${String(level).padStart(5)}  ${mbps(shard.length, codecTime).padStart(15)}  ${(shard.length / frame.length).toFixed(2).padStart(5)}x  ` +
        `${cli ? mbps(shard.length, cliTime).padStart(17) : 'absent'.padStart(17)}  ${cli ? (shard.length / cliFrame.length).toFixed(2).padStart(5) : '-'.padStart(5)}x  ` +
        `${cli ? (cliTime / codecTime).toFixed(2) : '-'}`,
    );
  }
  const frame = await zstdCompressFrame(shard, 3);
  const decompressTime = seconds(() => zstdDecompress(frame));
  console.log(`fzstd decompress (level 3 frame): ${mbps(shard.length, decompressTime)} MB/s`);

  const sinkSequences = Array.from({ length: wanted }, (_v, at) => ({
    tokens: sequences[at % sequences.length]!,
  }));
  // The sink compresses on a worker thread: what the caller's thread spends is its event-loop active time.
  const inlineLevel3 = await secondsAsync(() => zstdCompressFrame(shard, 3));
  for (const compression of ['none', 'zstd']) {
    const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-zstd-'));
    const before = performance.eventLoopUtilization();
    const time = await secondsAsync(() =>
      mdsSink({
        dir,
        dtype: 'uint32',
        boundaries: false,
        compression,
        shardSize: 16 * 2 ** 20,
        hashes: ['sha1'],
      })(_(sinkSequences)),
    );
    const busy = performance.eventLoopUtilization(before).active / 1000;
    console.log(
      `mdsSink ${compression.padEnd(4)} (16 MiB shards, sha1): ${mbps(shard.length, time)} MB/s of raw tokens, ` +
        `caller thread busy ${busy.toFixed(2)} s of ${time.toFixed(2)} s`,
    );
    await rm(dir, { recursive: true, force: true });
  }
  console.log(
    `(compressing the same bytes inline at level 3 would keep the caller busy ${inlineLevel3.toFixed(2)} s more)`,
  );
}

const SINK_MEMORY_CHILD = '--sink-memory-child';
const SINK_SHARD_MIB = [16, 64, 256];

/** The child: writes `shardMiB` MiB of token samples (war-and-peace bytes as ids, shifted per copy) as ONE shard. */
async function sinkMemoryChild(shardMiB: number): Promise<void> {
  const text = await readFile(path.resolve(repositoryRoot(), '../shared/data/war-and-peace.txt'));
  const words = new Uint32Array(text.buffer, text.byteOffset, Math.floor(text.length / 4));
  const base = Array.from({ length: Math.floor(words.length / SEQ_LEN) }, (_v, at) =>
    words.slice(at * SEQ_LEN, (at + 1) * SEQ_LEN).map((word) => word % VOCAB),
  );
  const shardBytes = shardMiB * 2 ** 20;
  const count = Math.floor((shardBytes - 4096) / (4 * SEQ_LEN + 11));
  function* sequences(): Generator<Sequence> {
    for (let at = 0; at < count; at += 1) {
      const copy = Math.floor(at / base.length);
      yield { tokens: base[at % base.length]!.map((id) => (id + copy * 9973) % VOCAB) };
    }
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-sink-memory-'));
  const rssBefore = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  const summary = await mdsSink({
    dir,
    dtype: 'uint32',
    boundaries: false,
    compression: 'zstd',
    shardSize: shardBytes,
    hashes: ['sha1'],
  })(_(sequences()));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await rm(dir, { recursive: true, force: true });
  const peakRss = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ rssBefore, peakRss, shards: summary.shards, seconds }));
}

if (process.argv[2] === SINK_MEMORY_CHILD) await sinkMemoryChild(Number(process.argv[3]));
else await main();
