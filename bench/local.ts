// Benchmark of the embedded LLM on ../shared/models/stories260K.gguf: raw node-llama-cpp output tokens/s by thread
// count, then the generate stage over the local backend vs raw node-llama-cpp on the very same requests, same run.
// Run: npx tsx bench/local.ts [--model PATH] [--threads N] [--rounds R]
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import _ from 'highland';
import {
  getLlama,
  LlamaChat,
  LlamaCompletion,
  type LlamaContext,
  LlamaLogLevel,
  resolveChatWrapper,
} from 'node-llama-cpp';
import type { CompletionRequest, CompletionResult, LlmBackend } from '../lib/backends/backend.js';
import { createLocalBackend, defaultThreads, sampleSeed } from '../lib/backends/local-backend.js';
import { generateStage } from '../lib/generate/engine.js';
import { resolveRecipe } from '../lib/generate/recipes/index.js';
import { createGenerateStats, totalTokens } from '../lib/generate/stats.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { drain } from '../lib/stream.js';
import type { Doc } from '../lib/types.js';

/** The repository root, from bench/ when run with tsx or from dist/bench/ when compiled. */
const REPO = path.resolve(import.meta.dirname, import.meta.filename.endsWith('.ts') ? '..' : '../..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.resolve(REPO, '../shared/models/stories260K.gguf') },
    threads: { type: 'string' },
    rounds: { type: 'string', default: '2' },
  },
});
const CORES = availableParallelism();
const THREADS = values.threads ? Number(values.threads) : defaultThreads(CORES);
const ROUNDS = Number(values.rounds);
const MAX_TOKENS = 128;
const GENERATIONS = 4;

const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 0, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: values.model! });
const chatWrapper = resolveChatWrapper(model);

/** Output tokens/s of one sequence writing `tokens` tokens, median of `repeats`. */
async function rawRate(threads: number, tokens: number, repeats: number): Promise<number> {
  const context = await model.createContext({ contextSize: 512, sequences: 1, threads });
  const rates: number[] = [];
  for (let repeat = 0; repeat < repeats; repeat += 1) {
    const sequence = context.getSequence();
    const started = performance.now();
    await new LlamaCompletion({ contextSequence: sequence }).generateCompletion('Once upon a time', {
      maxTokens: tokens,
      seed: repeat,
      temperature: 1,
      customStopTriggers: [],
      disableContextShift: true,
    });
    rates.push(sequence.tokenMeter.getState().usedOutputTokens / ((performance.now() - started) / 1000));
    sequence.dispose();
  }
  await context.dispose();
  return rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]!;
}

/** A backend that remembers every request it passes on (the raw baseline replays them). */
function recording(backend: LlmBackend, requests: CompletionRequest[]): LlmBackend {
  return {
    concurrency: backend.concurrency,
    format: backend.format,
    model: backend.model,
    complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
      requests.push(request);
      return backend.complete(request, signal);
    },
    close: () => backend.close(),
  };
}

/** The rephrase stage over the fixture documents with the local backend: output tokens and seconds. */
async function pipelineRun(docs: Doc[], concurrency: number, requests: CompletionRequest[]) {
  const stats = createGenerateStats();
  const backend = await createLocalBackend({
    spec: `local:${values.model}`,
    concurrency,
    format: 'chat',
    threads: THREADS,
    cores: CORES,
    gpu: false,
    stats,
  });
  const recipe = await resolveRecipe({
    recipe: 'rephrase',
    generations: GENERATIONS,
    nPerRequest: GENERATIONS,
    sampling: { maxTokens: MAX_TOKENS },
  });
  const clock = startClock();
  await drain(
    _(docs).through(
      generateStage({
        backend: recording(backend, requests),
        recipe,
        model: 'stories260K',
        seed: 0,
        onTruncated: 'keep',
        stats,
      }),
    ),
  );
  const time = clock();
  await backend.close();
  return { tokens: totalTokens(stats).completion, ...time };
}

/** The same samples straight through node-llama-cpp: C workers, each sample on a fresh sequence. */
async function rawRun(requests: CompletionRequest[], concurrency: number) {
  const context: LlamaContext = await model.createContext({
    contextSize: Math.min(model.trainContextSize, 4096),
    sequences: concurrency,
    threads: THREADS,
  });
  const samples = requests.flatMap((request) =>
    Array.from({ length: request.n }, (_v, index) => ({ request, seed: sampleSeed(request.seed, index) })),
  );
  let next = 0;
  let tokens = 0;
  const clock = startClock();
  const worker = async () => {
    const sequence = context.getSequence();
    const chat = new LlamaChat({ contextSequence: sequence, chatWrapper });
    while (next < samples.length) {
      const { request, seed } = samples[next++]!;
      const history = [
        ...request.messages!.map((message) =>
          message.role === 'system'
            ? { type: 'system' as const, text: message.content }
            : { type: 'user' as const, text: message.content },
        ),
        { type: 'model' as const, response: [] },
      ];
      const before = sequence.tokenMeter.getState().usedOutputTokens;
      await chat.generateResponse(history, {
        maxTokens: request.maxTokens,
        temperature: request.temperature ?? 1,
        topP: request.topP,
        seed,
        repeatPenalty: false,
      });
      tokens += sequence.tokenMeter.getState().usedOutputTokens - before;
      await sequence.clearHistory();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const time = clock();
  await context.dispose();
  return { tokens, ...time };
}

async function fixtureDocs(): Promise<Doc[]> {
  const docs: Doc[] = [];
  await drain(readDocs(await expandInputs([path.join(REPO, 'fixtures/web-sample.jsonl')])), (doc) =>
    docs.push(doc),
  );
  return docs;
}

interface Timed {
  tokens: number;
  /** Wall seconds. */
  seconds: number;
  /** CPU seconds of this process (llama.cpp's threads included): other processes on the machine do not count. */
  cpuSeconds: number;
}

/** Starts a wall and CPU clock; calling the result reads both. */
function startClock(): () => { seconds: number; cpuSeconds: number } {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - wall) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  };
}

/** Best wall rate and best CPU rate over the rounds. */
function report(label: string, runs: Timed[]): { wall: number; cpu: number } {
  const wall = Math.max(...runs.map((run) => run.tokens / run.seconds));
  const cpu = Math.max(...runs.map((run) => run.tokens / run.cpuSeconds));
  const tokens = runs.map((run) => run.tokens).join('/');
  console.log(
    `  ${label.padEnd(34)} ${wall.toFixed(0).padStart(6)} out tok/s wall  ${cpu.toFixed(0).padStart(6)} out tok per CPU-s  (tokens per round ${tokens})`,
  );
  return { wall, cpu };
}

console.log(
  `model ${path.basename(values.model!)}, ${CORES} cores, pipeline threads ${THREADS}, best of ${ROUNDS}`,
);
console.log('raw node-llama-cpp, one sequence, 100 tokens (median of 3):');
for (const threads of [...new Set([1, 2, CORES])]) {
  const rate = await rawRate(threads, 100, 3);
  console.log(`  threads ${String(threads).padEnd(3)} ${rate.toFixed(0).padStart(7)} out tok/s`);
}
const docs = await fixtureDocs();
for (const concurrency of [1, 4, 8]) {
  console.log(
    `${docs.length} documents x ${GENERATIONS} rephrases, ${MAX_TOKENS} tokens max, concurrency ${concurrency}:`,
  );
  const pipeline: Timed[] = [];
  const raw: Timed[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const requests: CompletionRequest[] = [];
    pipeline.push(await pipelineRun(docs, concurrency, requests));
    raw.push(await rawRun(requests, concurrency));
  }
  const rawBest = report('raw node-llama-cpp (same requests)', raw);
  const pipelineBest = report('generate stage + local backend', pipeline);
  console.log(
    `  pipeline / raw: wall ${(pipelineBest.wall / rawBest.wall).toFixed(3)}, CPU ${(pipelineBest.cpu / rawBest.cpu).toFixed(3)}`,
  );
}
await model.dispose();
await llama.dispose();
