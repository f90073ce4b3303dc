// bench/memory: peak RSS of `megadocs run` (the built CLI, G=4 stitch, shuffled mixture with E=2 and w=0.75)
// on the real fineweb-300 documents and on 8 times as many, against a zero-latency loopback server; once with
// V8's own heap sizing, once with the old space capped, which shows the live set. Run: node dist/bench/memory.js
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Old-space cap of the second round: V8 then collects instead of growing, and RSS follows the live set. */
const HEAP_LIMIT_MB = 160;
/** The repository root, from bench/ when run with tsx or from dist/bench/ when compiled. */
const REPO = path.resolve(import.meta.dirname, import.meta.filename.endsWith('.ts') ? '..' : '../..');
const CLI = path.join(REPO, 'dist/bin/megadocs.js');
const LINES = readFileSync(path.resolve(REPO, '../shared/data/fineweb-300.jsonl'), 'utf8').trim().split('\n');

/** The 300 documents `copies` times over, each copy with its own ids (so every copy is generated anew). */
async function input(dir: string, copies: number): Promise<string> {
  const file = path.join(dir, `fineweb-x${copies}.jsonl`);
  const records = [];
  for (let copy = 0; copy < copies; copy += 1) {
    for (const line of LINES) {
      const record = JSON.parse(line) as { id: unknown; text: string };
      records.push(JSON.stringify({ id: `${copy}-${String(record.id)}`, text: record.text }));
    }
  }
  await writeFile(file, `${records.join('\n')}\n`);
  return file;
}

interface Measured {
  documents: number;
  sequences: number;
  seconds: number;
  peakRssBytes: number;
}

/** `heapLimitMb`: V8's --max-old-space-size for the main thread (undefined: V8's default sizing). */
async function measure(file: string, out: string, url: string, heapLimitMb?: number): Promise<Measured> {
  const args = heapLimitMb ? [`--max-old-space-size=${heapLimitMb}`] : [];
  args.push(CLI, 'run', file, '--out', out, '--llm', url, '--model', 'bench-model', '--generations', '4');
  args.push(
    '--real-epochs',
    '2',
    '--synthetic-weight',
    '0.75',
    '--shard-size',
    '4MiB',
    '--quiet',
    '--json',
    '--overwrite',
  );
  const started = performance.now();
  const { stdout } = await run(process.execPath, args, { maxBuffer: 16 << 20 });
  const seconds = (performance.now() - started) / 1000;
  const summary = JSON.parse(stdout) as {
    source: { documents: number };
    output: { sequences: number };
    peakRssBytes: number;
  };
  return {
    documents: summary.source.documents,
    sequences: summary.output.sequences,
    seconds,
    peakRssBytes: summary.peakRssBytes,
  };
}

const work = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-memory-'));
const server = spawn(
  process.execPath,
  ['--import', 'tsx', path.join(REPO, 'test/helpers/openai-server-main.ts'), '--latency-ms', '0'],
  { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] },
);
try {
  const first = await createInterface({ input: server.stdout! })[Symbol.asyncIterator]().next();
  if (first.done) throw new Error('the test server exited before listening');
  const { url } = JSON.parse(first.value) as { url: string };
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  const inputs = { 1: await input(work, 1), 8: await input(work, 8) };
  for (const heapLimitMb of [undefined, HEAP_LIMIT_MB]) {
    const heap = heapLimitMb ? `--max-old-space-size=${heapLimitMb}` : 'default heap sizing';
    const results: Measured[] = [];
    for (const copies of [1, 8] as const) {
      const result = await measure(inputs[copies], path.join(work, `out-x${copies}`), url, heapLimitMb);
      results.push(result);
      console.log(
        `megadocs run, ${copies}x input, ${heap}: ${result.documents} documents -> ${result.sequences} sequences ` +
          `of 4096 in ${result.seconds.toFixed(1)} s, peak RSS ${mb(result.peakRssBytes)}`,
      );
    }
    console.log(
      `  peak RSS 8x / 1x input (${heap}): ${(results[1]!.peakRssBytes / results[0]!.peakRssBytes).toFixed(2)}`,
    );
  }
} finally {
  server.kill('SIGTERM');
  await rm(work, { recursive: true, force: true });
}
