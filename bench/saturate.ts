// bench/saturate: generated tokens/s of the whole `megadocs generate` command against simulated vLLM servers, each
// in its own process (test/helpers/vllm-sim-main.ts), at --concurrency 8, 64, 256, 1024 and auto; hosted-mode 429s.
// Per run: the command starts on fresh documents (a new --out), warms up, then the servers' counters are read over a
// window (tokens/s, queue wait in decode steps, preemptions) and the command is stopped (Ctrl-C). Figures are noisy
// on a shared machine: ratios within a few percent are ties. Run: npm run bench:saturate [-- --seconds S --warmup S]
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { REPO } from './llm-server.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '4' },
    'time-scale': { type: 'string', default: '0.1' },
    /** Only the scenarios whose name holds this (`hosted` for the hosted mode), e.g. `--scenario KV`. */
    scenario: { type: 'string' },
    /** The concurrencies to run, e.g. `--concurrency 64,auto` (the best fixed is of those run). */
    concurrency: { type: 'string', default: '8,64,256,1024,auto' },
  },
});
const wanted = (name: string) => values.scenario === undefined || name.includes(values.scenario);
const CONCURRENCIES = values.concurrency.split(',');
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const TIME_SCALE = Number(values['time-scale']);
const CLI = path.join(REPO, 'dist/bin/megadocs.js');
const DATA_FILE = path.resolve(REPO, '../shared/data/fineweb-300.jsonl');
/** Documents in the input: more than the fastest profile answers in a run (each run stops after its window). */
const DOCUMENTS = 12_000;
const FIXED = CONCURRENCIES.filter((c) => c !== 'auto');
/** Tokens per generation (the sim's outputTokens range); rephrase asks max_tokens 1024, so all finish `stop`. */
const OUTPUT_TOKENS: [number, number] = [100, 400];

/** The part of the sim's options this bench sets (see VllmSimOptions in test/helpers/vllm-sim.ts). */
interface SimOptions {
  maxNumSeqs: number;
  kvCacheTokens: number;
  maxModelLen?: number;
  decodeBaseMs?: number;
  decodePerSeqMs?: number;
  hosted?: { rpm?: number; tpm?: number; windowMs?: number };
}

/** What this bench reads of GET /sim/stats?lists=1. */
interface SimStats {
  received: number;
  answered: number;
  rateLimited: number;
  rateTokens: number;
  generatedTokens: number;
  preemptions: number;
  queueWaitSteps: number[];
  steps: number;
  runningSum: number;
  running: number;
  waiting: number;
  /** The theoretical peak tokens/s (real seconds) for the mean sizes seen since the last reset. */
  workloadPeakTokensPerS?: number;
  options: SimOptions;
}

interface Sim {
  url: string;
  root: string;
  child: ChildProcess;
}

async function startSim(options: SimOptions): Promise<Sim> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(REPO, 'test/helpers/vllm-sim-main.ts'),
      '--options',
      JSON.stringify({ timeScale: TIME_SCALE, outputTokens: OUTPUT_TOKENS, ...options }),
    ],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  if (first.done) throw new Error('the simulated server exited before listening');
  const { url } = JSON.parse(first.value) as { url: string };
  return { url, root: url.replace(/\/v1$/, ''), child };
}

async function stopSim(sim: Sim): Promise<void> {
  const exited = new Promise((resolve) => sim.child.once('exit', resolve));
  sim.child.kill('SIGTERM');
  await exited;
}

async function simStats(sim: Sim): Promise<SimStats> {
  return (await (await fetch(`${sim.root}/sim/stats?lists=1`)).json()) as SimStats;
}

async function resetSims(sims: Sim[]): Promise<void> {
  await Promise.all(sims.map((sim) => fetch(`${sim.root}/sim/reset`, { method: 'POST' })));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface Measure {
  tokensPerS: number;
  peak: number;
  waitSteps: number;
  preemptions: number;
  /** Mean batch over max_num_seqs, summed over the servers' steps. */
  batchFill: number;
  received: number;
  rateLimited: number;
  /** Requests and OpenAI-counted tokens admitted per second (hosted mode). */
  admittedPerS: number;
  rateTokensPerS: number;
  /** Per server: share of the window's generated tokens. */
  shares: number[];
}

/** `count` fineweb documents (the 300 texts in turn, each copy its own id), as bench/run.ts builds its input. */
async function benchInput(dir: string, count: number): Promise<string> {
  const texts = readFileSync(DATA_FILE, 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  const file = path.join(dir, 'input.jsonl');
  const lines = Array.from({ length: count }, (_v, i) =>
    JSON.stringify({ id: `saturate-${i}`, text: texts[i % texts.length] }),
  );
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * One `megadocs generate` run (rephrase G=4: one request of n=4 per document) against `sims`: started on a fresh
 * --out, measured over SECONDS after WARMUP seconds past its first answer, then stopped with SIGINT. A string
 * when the command ended on its own first (an option it does not know, an error), with its last stderr line.
 */
async function measure(sims: Sim[], input: string, work: string, args: string[]): Promise<Measure | string> {
  const out = await mkdtemp(path.join(work, 'out-'));
  await resetSims(sims);
  const urls = sims.flatMap((sim) => ['--llm', sim.url]);
  const child = spawn(process.execPath, [CLI, 'generate', input, '--out', out, ...urls, '--quiet', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exit: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exit = code;
      resolve();
    }),
  );
  const ended = () => `exited ${exit}: ${stderr.trim().split('\n').at(-1) ?? ''}`;
  try {
    for (let waited = 0; ; waited += 100) {
      if (exit !== undefined) return ended();
      const answered = (await Promise.all(sims.map(simStats))).reduce(
        (sum, stats) => sum + stats.answered,
        0,
      );
      if (answered > 0) break;
      if (waited > 60_000) return 'no answer within 60 s';
      await sleep(100);
    }
    await sleep(WARMUP * 1000);
    await resetSims(sims);
    const started = performance.now();
    await sleep(SECONDS * 1000);
    const all = await Promise.all(sims.map(simStats));
    const seconds = (performance.now() - started) / 1000;
    if (exit !== undefined) return `${ended()} (before the window closed: the input is too short)`;
    const sum = (pick: (stats: SimStats) => number) => all.reduce((total, stats) => total + pick(stats), 0);
    const generated = sum((stats) => stats.generatedTokens);
    return {
      tokensPerS: generated / seconds,
      peak: sum((stats) => stats.workloadPeakTokensPerS ?? Number.NaN),
      waitSteps: median(all.flatMap((stats) => stats.queueWaitSteps)),
      preemptions: sum((stats) => stats.preemptions),
      batchFill: sum((stats) => stats.runningSum) / sum((stats) => stats.steps * stats.options.maxNumSeqs),
      received: sum((stats) => stats.received),
      rateLimited: sum((stats) => stats.rateLimited),
      admittedPerS: sum((stats) => stats.received - stats.rateLimited) / seconds,
      rateTokensPerS: sum((stats) => stats.rateTokens) / seconds,
      shares: all.map((stats) => stats.generatedTokens / Math.max(1, generated)),
    };
  } finally {
    child.kill('SIGINT');
    const stopped = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!stopped) {
      console.log(`  (${args.join(' ')}: the command did not exit within 15 s of Ctrl-C: killed)`);
      child.kill('SIGKILL');
      await exited;
    }
    if (args.includes('auto') || args.includes('--rpm') || args.includes('--tpm')) printLimits(out);
    await rm(out, { recursive: true, force: true });
    // The stopped client's requests are aborted by the servers; wait until they are idle again.
    for (let i = 0; i < 100; i += 1) {
      const idle = (await Promise.all(sims.map(simStats))).every(
        (stats) => stats.running + stats.waiting === 0,
      );
      if (idle) break;
      await sleep(100);
    }
  }
}

/** The limits `auto` chose over time, per endpoint, from the stopped run's megadocs.json (when it has them). */
function printLimits(out: string): void {
  try {
    const record = JSON.parse(readFileSync(path.join(out, 'megadocs.json'), 'utf8')) as {
      stats?: { concurrency?: { endpoints?: Array<{ limits?: Array<[number, number]> }> } };
    };
    for (const [index, endpoint] of (record.stats?.concurrency?.endpoints ?? []).entries()) {
      const limits = (endpoint.limits ?? []).map(([at, limit]) => `${at}s:${limit}`).join(' ');
      console.log(`    auto limits, endpoint ${index + 1}: ${limits}`);
    }
  } catch {
    // no record: nothing to print
  }
}

interface Scenario {
  name: string;
  sims: SimOptions[];
}

const SCENARIOS: Scenario[] = [
  { name: 'small batch limit', sims: [{ maxNumSeqs: 64, kvCacheTokens: 1_000_000 }] },
  { name: 'large batch limit', sims: [{ maxNumSeqs: 1024, kvCacheTokens: 2_000_000 }] },
  { name: 'small KV cache', sims: [{ maxNumSeqs: 1024, kvCacheTokens: 100_000 }] },
  {
    name: 'two endpoints, one half as fast',
    sims: [
      { maxNumSeqs: 256, kvCacheTokens: 1_000_000 },
      { maxNumSeqs: 256, kvCacheTokens: 1_000_000, decodeBaseMs: 20, decodePerSeqMs: 0.1 },
    ],
  },
];

function describeSims(sims: SimOptions[]): string {
  return sims
    .map((sim) => {
      const step = `${sim.decodeBaseMs ?? 10} + ${sim.decodePerSeqMs ?? 0.05} x batch ms`;
      return `max_num_seqs ${sim.maxNumSeqs}, KV ${sim.kvCacheTokens.toLocaleString('en')} tokens, step ${step}`;
    })
    .join(' | ');
}

const pad = (text: string, width: number) => text.padStart(width);

async function saturation(scenario: Scenario, input: string, work: string): Promise<void> {
  const sims = await Promise.all(scenario.sims.map(startSim));
  try {
    console.log(`\n${scenario.name}: ${describeSims(scenario.sims)}`);
    const results = new Map<string, Measure | string>();
    for (const concurrency of CONCURRENCIES) {
      results.set(concurrency, await measure(sims, input, work, ['--concurrency', concurrency]));
    }
    const fixed = FIXED.map((c) => results.get(c)).filter((m): m is Measure => typeof m !== 'string');
    const best = Math.max(...fixed.map((m) => m.tokensPerS));
    const at1024 = results.get('1024');
    const preemptions1024 = typeof at1024 === 'string' ? Number.NaN : (at1024?.preemptions ?? Number.NaN);
    console.log(
      `  ${'C'.padEnd(5)} ${pad('tok/s', 8)} ${pad('/best fixed', 11)} ${pad('/peak', 6)} ${pad('wait p50 steps', 14)} ` +
        `${pad('batch fill', 10)} ${pad('preemptions', 11)} ${pad('/C=1024', 7)}${sims.length > 1 ? '  token share per server' : ''}`,
    );
    for (const [concurrency, result] of results) {
      if (typeof result === 'string') {
        console.log(`  ${concurrency.padEnd(5)} not available (${result})`);
        continue;
      }
      const preemptionRatio = preemptions1024 > 0 ? (result.preemptions / preemptions1024).toFixed(2) : '-';
      const shares = sims.length > 1 ? `  ${result.shares.map((share) => share.toFixed(2)).join(' / ')}` : '';
      console.log(
        `  ${concurrency.padEnd(5)} ${pad(result.tokensPerS.toFixed(0), 8)} ${pad((result.tokensPerS / best).toFixed(3), 11)} ` +
          `${pad((result.tokensPerS / result.peak).toFixed(3), 6)} ${pad(result.waitSteps.toFixed(0), 14)} ` +
          `${pad(result.batchFill.toFixed(2), 10)} ${pad(String(result.preemptions), 11)} ${pad(preemptionRatio, 7)}${shares}`,
      );
    }
    const auto = results.get('auto');
    if (auto && typeof auto !== 'string') {
      const ok = (pass: boolean) => (pass ? 'yes' : 'NO');
      const preemptionsOk = Number.isNaN(preemptions1024) || auto.preemptions <= preemptions1024 / 5;
      console.log(
        `  targets for auto: >= 0.95 of the best fixed ${ok(auto.tokensPerS >= 0.95 * best)}, median wait < 2 steps ` +
          `${ok(auto.waitSteps < 2)}, preemptions <= 1/5 of C=1024's ${ok(preemptionsOk)}`,
      );
    }
  } finally {
    await Promise.all(sims.map(stopSim));
  }
}

/** Hosted mode: a window of 3 s; --rpm / --tpm given per real minute (20 windows). */
const HOSTED_WINDOW_MS = 3000;
const PER_MINUTE = 60_000 / HOSTED_WINDOW_MS;

async function hosted(input: string, work: string): Promise<void> {
  const limits: Array<[string, { rpm?: number; tpm?: number }, string[]]> = [
    ['rpm 120 per 3 s window', { rpm: 120 }, ['--rpm', String(120 * PER_MINUTE)]],
    ['tpm 400k per 3 s window', { tpm: 400_000 }, ['--tpm', String(400_000 * PER_MINUTE)]],
  ];
  console.log(
    `\nhosted mode (max_num_seqs 1024; limits per ${HOSTED_WINDOW_MS / 1000} s sliding window, the flags per real minute)`,
  );
  for (const [name, limit, flags] of limits) {
    const sim = await startSim({
      maxNumSeqs: 1024,
      kvCacheTokens: 2_000_000,
      hosted: { ...limit, windowMs: HOSTED_WINDOW_MS },
    });
    try {
      const runs: Array<[string, string[]]> = [
        ['C=64, no flag (the limits from the headers)', ['--concurrency', '64']],
        [`${flags.join(' ')} (auto)`, flags],
      ];
      for (const [label, args] of runs) {
        const result = await measure([sim], input, work, args);
        if (typeof result === 'string') {
          console.log(`  ${name}, ${label}: not available (${result})`);
          continue;
        }
        const allowed = limit.rpm !== undefined ? limit.rpm : limit.tpm!;
        const achieved = limit.rpm !== undefined ? result.admittedPerS : result.rateTokensPerS;
        const rate = achieved / (allowed / (HOSTED_WINDOW_MS / 1000));
        console.log(
          `  ${name}, ${label}: 429 share ${((100 * result.rateLimited) / Math.max(1, result.received)).toFixed(2)}% ` +
            `(target < 1%), achieved / allowed ${rate.toFixed(3)} (target >= 0.9), ${result.tokensPerS.toFixed(0)} tok/s`,
        );
      }
    } finally {
      await stopSim(sim);
    }
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-saturate-'));
  try {
    const input = await benchInput(work, DOCUMENTS);
    console.log(
      `saturate bench: megadocs generate, rephrase G=4 (n=4) on fineweb-300 texts, ${OUTPUT_TOKENS.join('-')} tokens ` +
        `per generation; sims at timeScale ${TIME_SCALE}; per run ${WARMUP} s warm-up then ${SECONDS} s measured ` +
        '(tok/s in real seconds; /peak: over the theoretical peak for the measured workload; noisy on shared cores)',
    );
    for (const scenario of SCENARIOS.filter((each) => wanted(each.name)))
      await saturation(scenario, input, work);
    if (wanted('hosted')) await hosted(input, work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
