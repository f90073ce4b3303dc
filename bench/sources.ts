// Benchmark of reading sources: MB/s through readDocs for JSONL, .jsonl.zst, JSON array and Parquet,
// each next to a baseline measured in the same run (JSON.parse of pre-split lines). Run: npx tsx bench/sources.ts
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localShard } from '../lib/sources/local.js';
import { readDocs } from '../lib/sources/read.js';
import type { RecordOptions } from '../lib/sources/types.js';
import { drain } from '../lib/stream.js';

/** The repository root, from bench/ when run with tsx or from dist/bench/ when compiled. */
const REPO = path.resolve(import.meta.dirname, import.meta.filename.endsWith('.ts') ? '..' : '../..');
const DATA = path.resolve(REPO, '../shared/data');
/** How many copies of the 2 MB Wikipedia sample make the JSONL input (about 64 MB). */
const COPIES = 30;

async function timed(run: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

/** Highest heap use seen while reading (sampled every 1,000 documents). */
let peakHeap = 0;

async function readAll(file: string, options: Partial<RecordOptions> = {}): Promise<number> {
  let documents = 0;
  await drain(readDocs([localShard(file)], options), () => {
    documents += 1;
    if (documents % 1000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  });
  return documents;
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-bench-sources-'));
  try {
    const sample = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl'));
    const jsonl = path.join(dir, 'big.jsonl');
    await fs.writeFile(jsonl, Buffer.concat(Array.from({ length: COPIES }, () => sample)));
    const lines = sample.toString('utf8').split('\n').filter(Boolean);
    const array = path.join(dir, 'big.json');
    await fs.writeFile(
      array,
      `[\n${Array.from({ length: COPIES }, () => lines.join(',\n')).join(',\n')}\n]\n`,
    );
    const megabytes = (COPIES * sample.length) / 1e6;

    // Baseline: JSON.parse alone on lines already split into strings (no I/O, no splitting).
    const allLines = Array.from({ length: COPIES }, () => lines).flat();
    await readAll(jsonl); // warm-up
    const baseline = await timed(() => {
      for (const line of allLines) JSON.parse(line);
    });
    const report = (label: string, seconds: number, mb: number) =>
      console.log(
        `${label.padEnd(34)} ${(mb / seconds).toFixed(0).padStart(5)} MB/s   ${(baseline / seconds).toFixed(2)}x of JSON.parse alone`,
      );
    console.log(`input: ${megabytes.toFixed(0)} MB of JSONL (${allLines.length} documents)`);
    report('baseline: JSON.parse of split lines', baseline, megabytes);
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    peakHeap = 0;
    report('readDocs .jsonl', await timed(() => readAll(jsonl).then(() => {})), megabytes);
    console.log(
      `  heap while reading it: at most ${((peakHeap - heapBefore) / 1e6).toFixed(0)} MB above the start`,
    );
    report('readDocs .json (array)', await timed(() => readAll(array).then(() => {})), megabytes);
    // Small real files: read once to warm up, then repeatedly; MB are the decompressed JSONL bytes.
    const repeated = async (
      label: string,
      file: string,
      textBytes: number,
      options: Partial<RecordOptions> = {},
    ) => {
      await readAll(file, options);
      const rounds = 10;
      const seconds = await timed(async () => {
        for (let i = 0; i < rounds; i += 1) await readAll(file, options);
      });
      report(`${label} (${rounds} x)`, seconds, (rounds * textBytes) / 1e6);
    };
    await repeated('readDocs .jsonl.zst', path.join(DATA, 'wikipedia-2349.jsonl.zst'), sample.length);
    const finewebBytes = readFileSync(path.join(DATA, 'fineweb-300.jsonl')).length;
    await repeated('readDocs .parquet (SNAPPY)', path.join(DATA, 'fineweb-300.parquet'), finewebBytes);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
