// Benchmark of the generation engine against the loopback OpenAI-compatible server in its own process:
// req/s over the bound C/L at fixed latency (journal on), and the most req/s at L=0 next to the Python anchor
// (asyncio + aiohttp + semaphore) measured in the same run. Run: npx tsx bench/generate.ts [--seconds S]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { HttpBackend } from '../lib/backends/http-backend.js';
import { defaultWindow, generateStage } from '../lib/generate/engine.js';
import { Journal } from '../lib/generate/journal.js';
import { resolveRecipe } from '../lib/generate/recipes/index.js';
import { createGenerateStats, latencyQuantile } from '../lib/generate/stats.js';
import { drain, fromAsyncIterable } from '../lib/stream.js';
import type { Doc } from '../lib/types.js';
import { REPO, startLlmServer, stopLlmServer } from './llm-server.js';

const DATA_FILE = path.resolve(REPO, '../shared/data/fineweb-300.jsonl');

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);

const TEXTS = readFileSync(DATA_FILE, 'utf8')
  .trim()
  .split('\n')
  .map((line) => (JSON.parse(line) as { text: string }).text);

/** `count` documents made of the real texts in turn, produced as they are pulled (like a source). */
function* benchDocs(count: number): Generator<Doc> {
  for (let i = 0; i < count; i += 1) yield { id: `bench-${i}`, text: TEXTS[i % TEXTS.length]! };
}

interface Measure {
  requests: number;
  seconds: number;
  reqPerSecond: number;
  cpuMicrosPerRequest: number;
  maxInFlight: number;
  p50: number;
  p99: number;
}

/** Rephrase G=1 over `count` documents at concurrency C with the journal on. */
async function runEngine(url: string, concurrency: number, count: number): Promise<Measure> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-generate-'));
  const stats = createGenerateStats();
  const backend = new HttpBackend({
    urls: [url],
    api: 'chat',
    model: 'bench-model',
    concurrency,
    timeoutMs: 60_000,
    stats,
  });
  const journal = await Journal.open({ stateDir, configHash: 'bench', window: defaultWindow(concurrency) });
  const recipe = await resolveRecipe({ recipe: 'rephrase', generations: 1, nPerRequest: 1 });
  let maxInFlight = 0;
  const sampler = setInterval(() => {
    maxInFlight = Math.max(maxInFlight, stats.requests.inFlight);
  }, 5);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await drain(
    fromAsyncIterable(benchDocs(count)).through(
      generateStage({ backend, recipe, model: 'bench-model', seed: 0, onTruncated: 'keep', journal, stats }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  clearInterval(sampler);
  journal.close();
  await backend.close();
  await rm(stateDir, { recursive: true, force: true });
  const requests = stats.requests.completed;
  return {
    requests,
    seconds,
    reqPerSecond: requests / seconds,
    cpuMicrosPerRequest: (used.user + used.system) / requests,
    maxInFlight,
    p50: latencyQuantile(stats.latency, 0.5),
    p99: latencyQuantile(stats.latency, 0.99),
  };
}

/** The anchor under the first Python that has aiohttp (pyenv's python3 may lack Debian's python3-aiohttp). */
function anchor(url: string, concurrency: number, requests: number): Measure | string {
  for (const python of ['python3', '/usr/bin/python3']) {
    const run = spawnSync(
      python,
      [
        path.join(REPO, 'bench/anchor_aiohttp.py'),
        ...[
          '--url',
          url,
          '--concurrency',
          String(concurrency),
          '--requests',
          String(requests),
          '--data',
          DATA_FILE,
        ],
      ],
      { encoding: 'utf8' },
    );
    if (run.error || run.status !== 0) continue;
    const parsed = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Partial<Measure> & {
      skipped?: string;
    };
    if (!parsed.skipped) return parsed as Measure;
  }
  return 'anchor skipped: install python3-aiohttp (apt-get install -y python3-aiohttp)';
}

function describe(measure: Measure): string {
  return (
    `${measure.requests} requests in ${measure.seconds.toFixed(2)} s = ${measure.reqPerSecond.toFixed(0)} req/s, ` +
    `${measure.cpuMicrosPerRequest.toFixed(0)} us CPU/request`
  );
}

async function main(): Promise<void> {
  console.log(`generate bench (${SECONDS} s per run, journal on, rephrase G=1 on fineweb-300 texts)`);
  for (const [concurrency, latencyMs] of [
    [64, 50],
    [256, 100],
  ] as const) {
    const server = await startLlmServer(latencyMs);
    try {
      const bound = (concurrency * 1000) / latencyMs;
      await runEngine(server.url, concurrency, concurrency * 2); // warm-up: connections, JIT
      const measure = await runEngine(server.url, concurrency, Math.ceil(bound * SECONDS));
      console.log(
        `C=${concurrency} L=${latencyMs}ms: ${describe(measure)}; bound C/L = ${bound.toFixed(0)} req/s; ` +
          `ratio ${(measure.reqPerSecond / bound).toFixed(3)} (target >= 0.95); ` +
          `max in flight ${measure.maxInFlight}; latency p50 ${measure.p50.toFixed(1)} ms p99 ${measure.p99.toFixed(1)} ms`,
      );
    } finally {
      console.log(`  (server process: ${(await stopLlmServer(server)).toFixed(0)} us CPU/request)`);
    }
  }
  const server = await startLlmServer(0);
  try {
    await runEngine(server.url, 64, 1_000);
    const probe = await runEngine(server.url, 64, 2_000);
    const count = Math.max(2_000, Math.ceil(probe.reqPerSecond * SECONDS));
    // Two interleaved rounds, best of each: the machine is shared, this keeps a noisy second from deciding.
    const ours: Measure[] = [];
    const python: Measure[] = [];
    let skipped: string | undefined;
    for (let round = 0; round < 2; round += 1) {
      ours.push(await runEngine(server.url, 64, count));
      const measured = anchor(server.url, 64, count);
      if (typeof measured === 'string') skipped = measured;
      else python.push(measured);
    }
    const best = (measures: Measure[]) =>
      measures.reduce((a, b) => (b.reqPerSecond > a.reqPerSecond ? b : a));
    console.log(`C=64 L=0 megadocs (best of 2): ${describe(best(ours))}`);
    if (skipped || python.length === 0) {
      console.log(skipped ?? 'anchor skipped');
    } else {
      console.log(`C=64 L=0 anchor, asyncio + aiohttp + semaphore (best of 2): ${describe(best(python))}`);
      console.log(
        `ratio megadocs / anchor req/s: ${(best(ours).reqPerSecond / best(python).reqPerSecond).toFixed(2)} (target >= 1.5)`,
      );
    }
  } finally {
    console.log(`  (server process: ${(await stopLlmServer(server)).toFixed(0)} us CPU/request)`);
  }
}

await main();
