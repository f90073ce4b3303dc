// Tokenization throughput on real text: a single-threaded encode loop (the baseline, measured in the same
// run) vs the tokenize stage and its worker pool; for a tokenizer.json (PATH or hf:...), also one thread of the
// official Hugging Face `tokenizers` binding on the same fresh text. Usage:
// node dist/bench/tokenize.js [tokenizer] [workers] [rounds]
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import _ from 'highland';
import { runtimeOptionsFromEnv } from '../bin/environment.js';
import { drain } from '../lib/stream.js';
import {
  type Encoder,
  isTokenizerJsonSpec,
  loadEncoder,
  localTokenizerSpec,
  prepareTokenizer,
  tokenizerJsonFile,
} from '../lib/tokenize/encoders.js';
import { type EncodedBatch, TokenizerPool } from '../lib/tokenize/pool.js';
import { tokenizeStage } from '../lib/tokenize/stage.js';
import type { Doc } from '../lib/types.js';

/** The checkout's root (where package.json is), from bench/ or dist/bench/. */
function repositoryRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) directory = path.dirname(directory);
  return directory;
}

/** Wikipedia and FineWeb documents, and War and Peace cut into ~4 KB documents at paragraph breaks. */
async function realDocs(dataDirectory: string): Promise<Doc[]> {
  const texts: string[] = [];
  for (const file of ['wikipedia-2349.jsonl', 'fineweb-300.jsonl']) {
    const lines = (await readFile(path.join(dataDirectory, file), 'utf8')).split('\n').filter(Boolean);
    texts.push(...lines.map((line) => JSON.parse(line).text as string));
  }
  let chunk = '';
  for (const paragraph of (await readFile(path.join(dataDirectory, 'war-and-peace.txt'), 'utf8')).split(
    '\n\n',
  )) {
    chunk += `${paragraph}\n\n`;
    if (chunk.length >= 4096) {
      texts.push(chunk);
      chunk = '';
    }
  }
  if (chunk) texts.push(chunk);
  return texts.map((text, index) => ({ id: String(index), text }));
}

/** One pass of the baseline: a plain encode loop on this thread. */
function encodeLoop(encoder: Encoder, docs: Doc[]): number {
  let tokens = 0;
  for (const doc of docs) tokens += encoder.encode(doc.text).length + 1;
  return tokens;
}

/** One pass on a loaded pool: ~256 KB batches, all queued at once (the pool spreads them). */
async function poolPass(pool: TokenizerPool, docs: Doc[]): Promise<number> {
  const batches: Promise<EncodedBatch>[] = [];
  let batch: string[] = [];
  let chars = 0;
  for (const doc of docs) {
    batch.push(doc.text);
    chars += doc.text.length;
    if (chars >= 256 * 1024) {
      batches.push(pool.encode(batch));
      batch = [];
      chars = 0;
    }
  }
  if (batch.length > 0) batches.push(pool.encode(batch));
  return (await Promise.all(batches)).reduce((sum, encoded) => sum + encoded.tokens.length, 0);
}

interface Rate {
  /** Tokens per wall-clock second. */
  wall: number;
  /** Tokens per CPU second of the whole process (all threads): what the work costs, whatever the machine load. */
  cpu: number;
}

async function rate(pass: () => number | Promise<number>): Promise<Rate> {
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const tokens = await pass();
  const cpu = process.cpuUsage(cpuStart);
  return {
    wall: tokens / (Number(process.hrtime.bigint() - start) / 1e9),
    cpu: tokens / ((cpu.user + cpu.system) / 1e6),
  };
}

/** The official binding (a devDependency), on the file with its added tokens removed (they are plain text here). */
async function officialTokenizer(
  spec: string,
): Promise<{ encode(text: string): Promise<number> } | undefined> {
  const binding = await import('tokenizers').catch(() => undefined);
  if (!binding) return undefined;
  const json = JSON.parse(await readFile(await tokenizerJsonFile(spec), 'utf8'));
  json.added_tokens = [];
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'megadocs-bench-')), 'tokenizer.json');
  await writeFile(file, JSON.stringify(json));
  const tokenizer = binding.Tokenizer.fromFile(file);
  return {
    encode: async (text) => (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds().length,
  };
}

/**
 * Fresh text on one thread, each document encoded once: megadocs' encode loop on a new encoder (its piece cache
 * empty) against the official binding, one call at a time.
 */
async function compareWithOfficial(tokenizer: string, docs: Doc[]): Promise<void> {
  const official = await officialTokenizer(tokenizer);
  if (!official) {
    console.log('official tokenizers binding not installed (npm install --include=dev): no comparison');
    return;
  }
  const theirs = await rate(async () => {
    let tokens = 0;
    for (const doc of docs) tokens += (await official.encode(doc.text)) + 1;
    return tokens;
  });
  const fresh = await loadEncoder(tokenizer);
  const ours = await rate(() => encodeLoop(fresh, docs));
  console.log(
    `fresh text, one thread: megadocs ${describe(ours)}; official tokenizers ${describe(theirs)}; megadocs / official = ${(ours.wall / theirs.wall).toFixed(2)}x`,
  );
}

const millions = (perSecond: number) => `${(perSecond / 1e6).toFixed(2)} M tokens/s`;
const describe = (measured: Rate) => `${millions(measured.wall)} (${millions(measured.cpu)} of CPU)`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const [tokenizer = 'o200k_base', workersArg, roundsArg] = process.argv.slice(2);
  const workers = workersArg ? Number(workersArg) : availableParallelism();
  const rounds = roundsArg ? Number(roundsArg) : 3;
  // hf:ORG/REPO is downloaded as the CLI would (HF_ENDPOINT, HF_TOKEN, the Hugging Face cache).
  await prepareTokenizer(tokenizer, runtimeOptionsFromEnv(process.env).hubTokenizer);
  const docs = await realDocs(path.join(repositoryRoot(), '../shared/data'));
  const megabytes = docs.reduce((sum, doc) => sum + Buffer.byteLength(doc.text), 0) / 1e6;
  console.log(
    `${tokenizer}: ${docs.length} documents, ${megabytes.toFixed(1)} MB, ${workers} workers, ${rounds} rounds`,
  );

  if (isTokenizerJsonSpec(tokenizer)) await compareWithOfficial(tokenizer, docs);

  // Cold: a fresh stage (its pool starts and loads the encoder) vs a fresh encoder's first pass.
  const stageRate = await rate(async () => {
    let tokens = 0;
    const stage = tokenizeStage({ tokenizer, workers, eos: true });
    await drain(_(docs).through(stage), (doc) => {
      tokens += doc.tokens.length;
    });
    return tokens;
  });
  const encoder = await loadEncoder(tokenizer);
  const coldLoop = await rate(() => encodeLoop(encoder, docs));
  console.log(
    `cold: encode loop ${describe(coldLoop)}; tokenize stage, start-up included, ${describe(stageRate)} = ${(stageRate.wall / coldLoop.wall).toFixed(2)}x`,
  );

  // Warm (merge caches filled, JIT done), alternating so that both see the same machine load.
  const pool = new TokenizerPool({ tokenizer: await localTokenizerSpec(tokenizer), workers, eos: true });
  await pool.ready();
  await poolPass(pool, docs);
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const loop = await rate(() => encodeLoop(encoder, docs));
    const pooled = await rate(() => poolPass(pool, docs));
    ratios.push(pooled.wall / loop.wall);
    console.log(
      `warm round ${round}: encode loop ${describe(loop)}; pool ${describe(pooled)} = ${(pooled.wall / loop.wall).toFixed(2)}x`,
    );
  }
  await pool.close();
  console.log(`median warm ratio, pool / single-thread loop: ${median(ratios).toFixed(2)}x`);
}

await main();
