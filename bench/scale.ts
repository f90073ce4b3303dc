// bench/scale: the scale rehearsal, one twentieth of the megadocs paper's largest run (164k documents x 32 rephrases),
// stitched, against simulated vLLM servers in their own processes; reports wall vs simulated LLM time, peak RSS and
// peak disk, then kills a second run with SIGKILL half way, resumes it and checks its shards equal the first run's.
// Run: node dist/bench/scale.js [--docs 8200] [--servers 4] [--time-scale 0.1] [--output-tokens 400-1000]
//   [--concurrency 128] [--heap-mb MB] [--no-resume] [--keep]   (--docs 820 --time-scale 0.02: a check in ~1 min)
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { REPO } from './llm-server.js';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '8200' },
    servers: { type: 'string', default: '4' },
    'time-scale': { type: 'string', default: '0.1' },
    'output-tokens': { type: 'string', default: '400-1000' },
    concurrency: { type: 'string', default: '128' },
    generations: { type: 'string', default: '32' },
    files: { type: 'string', default: '16' },
    'heap-mb': { type: 'string' },
    'no-resume': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const DOCS = Number(values.docs);
const GENERATIONS = Number(values.generations);
const CLI = path.join(REPO, 'dist/bin/megadocs.js');
const DATA_FILE = path.resolve(REPO, '../shared/data/fineweb-300.jsonl');
/** How often the megadocs process's memory (/proc) and the run directory's size are sampled. */
const SAMPLE_MS = 500;

/** `DOCS` real fineweb documents (the 300 texts in turn, each copy with its own id) in `files` JSONL files. */
async function scaleInput(dir: string, files: number): Promise<string> {
  const texts = readFileSync(DATA_FILE, 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  const input = path.join(dir, 'input');
  await mkdir(input, { recursive: true });
  for (let file = 0; file < files; file += 1) {
    const lines = [];
    for (let doc = file; doc < DOCS; doc += files)
      lines.push(JSON.stringify({ id: `scale-${doc}`, text: texts[doc % texts.length] }));
    await writeFile(path.join(input, `part-${String(file).padStart(3, '0')}.jsonl`), `${lines.join('\n')}\n`);
  }
  return input;
}

/** Bytes under `dir`, by top-level entry: `state` (the journal), `spill`, and the rest (shards, index). */
async function diskUse(dir: string): Promise<{ journal: number; spill: number; output: number }> {
  const use = { journal: 0, spill: 0, output: 0 };
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const size = await stat(file).then(
      (stats) => stats.size,
      () => 0,
    );
    const top = path.relative(dir, file).split(path.sep)[0];
    if (top === 'state') use.journal += size;
    else if (top === 'spill') use.spill += size;
    else use.output += size;
  }
  return use;
}

/** VmRSS and VmHWM of a live process, in bytes (0 once it has exited). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  summary?: {
    source: { documents: number };
    generate: { requests: { completed: number; replayed: number } };
    output: { sequences: number; shards: number };
    tokens: { real: number; synthetic: number };
    peakRssBytes: number;
  };
  peakRss: number;
  peakDisk: number;
  peakDiskParts: { journal: number; spill: number; output: number };
  final: { journal: number; spill: number; output: number };
  /** RSS a quarter, half and three quarters into the run, and at its last sample. */
  rssAt: number[];
}

/** One `megadocs run` of the rehearsal, sampled while it goes; SIGKILLed once its journal holds `killAtJournalBytes`. */
async function runOnce(
  input: string,
  out: string,
  urls: string[],
  killAtJournalBytes?: number,
): Promise<Measured> {
  const heap = values['heap-mb'] ? [`--max-old-space-size=${values['heap-mb']}`] : [];
  const args = [...heap, CLI, 'run', input, '--out', out, '--llm', urls.join(','), '--model', 'sim-model'];
  args.push(
    '--generations',
    String(GENERATIONS),
    '--assemble',
    'stitch',
    '--concurrency',
    values.concurrency,
  );
  args.push('--quiet', '--json');
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, signal) => resolve([code, signal])),
  );
  let peakRss = 0;
  let peakDisk = 0;
  let peakDiskParts = { journal: 0, spill: 0, output: 0 };
  const rssSamples: number[] = [];
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const memory = memoryOf(child.pid!);
      peakRss = Math.max(peakRss, memory.hwm);
      const use = await diskUse(out);
      const total = use.journal + use.spill + use.output;
      if (total > peakDisk) {
        peakDisk = total;
        peakDiskParts = use;
      }
      if (memory.rss > 0) rssSamples.push(memory.rss);
      if (killAtJournalBytes !== undefined && use.journal >= killAtJournalBytes) child.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  })();
  const [code, signal] = await exited;
  done = true;
  await sampler;
  const seconds = (performance.now() - started) / 1000;
  const summary = code === 0 ? (JSON.parse(stdout) as Measured['summary']) : undefined;
  return {
    code,
    signal,
    seconds,
    summary,
    peakRss: Math.max(peakRss, summary?.peakRssBytes ?? 0),
    peakDisk,
    peakDiskParts,
    final: await diskUse(out),
    rssAt: [1, 2, 3, 4].map((quarter) => rssSamples[Math.ceil((quarter * rssSamples.length) / 4) - 1] ?? 0),
  };
}

/** A simulated vLLM server (test/helpers/vllm-sim-main.ts) in its own process, so its CPU is not megadocs'. */
interface SimProcess {
  url: string;
  process: ChildProcess;
}

/** The engine counters of the sim's GET /sim/stats this bench reads. */
interface SimStats {
  answered: number;
  generatedTokens: number;
  preemptions: number;
  busyMs: number;
  steps: number;
  runningSum: number;
  /** Generated tokens/s (real seconds) at full batch, for the workload seen (prefill and KV included) when known. */
  peakTokensPerS: number;
  workloadPeakTokensPerS?: number;
}

async function startSim(): Promise<SimProcess> {
  const args = ['--import', 'tsx', path.join(REPO, 'test/helpers/vllm-sim-main.ts')];
  args.push('--time-scale', values['time-scale'], '--output-tokens', values['output-tokens']);
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  if (first.done) throw new Error('the simulated server exited before listening');
  return { url: (JSON.parse(first.value) as { url: string }).url, process: child };
}

async function simRoute(sim: SimProcess, method: 'GET' | 'POST', route: string): Promise<unknown> {
  const response = await fetch(new URL(route, sim.url), { method });
  if (!response.ok) throw new Error(`${method} ${route} of ${sim.url}: HTTP ${response.status}`);
  return route === '/sim/stats' ? response.json() : undefined;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const millions = (count: number) => `${(count / 1e6).toFixed(1)}M`;

/**
 * The sims' counters since their last reset: tokens, busy time, mean batch, and the LLM time the tokens need at the
 * servers' peak rate (all of them at full batch all the time), against `wallSeconds`.
 */
async function simFigures(sims: SimProcess[], wallSeconds: number): Promise<string> {
  const stats = (await Promise.all(sims.map((sim) => simRoute(sim, 'GET', '/sim/stats')))) as SimStats[];
  const total = (field: (stat: SimStats) => number) => stats.reduce((sum, stat) => sum + field(stat), 0);
  const tokens = total((stat) => stat.generatedTokens);
  const busy = stats.map((stat) => stat.busyMs / 1000);
  const ideal = tokens / total((stat) => stat.workloadPeakTokensPerS ?? stat.peakTokensPerS);
  const simulated = (seconds: number) => (seconds / Number(values['time-scale'])).toFixed(0);
  return (
    `${millions(tokens)} simulated tokens generated, which the servers at their peak rate need ${ideal.toFixed(0)} s ` +
    `(${simulated(ideal)} simulated s): wall / that = ${(wallSeconds / ideal).toFixed(2)}; each server busy ` +
    `${Math.min(...busy).toFixed(0)}-${Math.max(...busy).toFixed(0)} s, mean batch ` +
    `${(total((stat) => stat.runningSum) / total((stat) => stat.steps)).toFixed(0)}, ` +
    `${total((stat) => stat.preemptions)} preemptions`
  );
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-scale-'));
  const sims = await Promise.all(Array.from({ length: Number(values.servers) }, startSim));
  const timeScale = Number(values['time-scale']);
  try {
    const input = await scaleInput(work, Number(values.files));
    const urls = sims.map((sim) => sim.url);
    console.log(
      `scale rehearsal: ${DOCS} fineweb documents x G=${GENERATIONS}, stitch, ${sims.length} simulated vLLM servers ` +
        `(time scale ${timeScale}, ${values['output-tokens']} tokens a generation), --concurrency ${values.concurrency}, ` +
        `${availableParallelism()} cores`,
    );
    const full = await runOnce(input, path.join(work, 'full'), urls);
    if (!full.summary) throw new Error(`the rehearsal run failed (exit ${full.code})`);
    const { summary } = full;
    const output = full.final.output;
    console.log(
      `  wall ${full.seconds.toFixed(0)} s (${(full.seconds / timeScale).toFixed(0)} simulated s); ` +
        (await simFigures(sims, full.seconds)),
    );
    console.log(
      `  ${summary.source.documents} documents -> ${summary.output.sequences} sequences of 4096, ${summary.output.shards} ` +
        `shards (${mb(output)}); packed tokens real ${millions(summary.tokens.real)} + synthetic ${millions(summary.tokens.synthetic)}`,
    );
    console.log(
      `  peak RSS ${mb(full.peakRss)}${values['heap-mb'] ? ` (old space capped at ${values['heap-mb']} MB)` : ''}; ` +
        `RSS a quarter, half, three quarters into the run and at its end: ${full.rssAt.map(mb).join(', ')}`,
    );
    console.log(
      `  peak disk ${mb(full.peakDisk)} (journal ${mb(full.peakDiskParts.journal)}, spill ${mb(full.peakDiskParts.spill)}, ` +
        `shards ${mb(full.peakDiskParts.output)}) = ${(full.peakDisk / output).toFixed(2)}x the output; ` +
        `left after the run: journal ${mb(full.final.journal)}, spill ${mb(full.final.spill)}`,
    );
    if (!values['no-resume']) {
      const resumed = path.join(work, 'resumed');
      await Promise.all(sims.map((sim) => simRoute(sim, 'POST', '/sim/reset')));
      const killed = await runOnce(input, resumed, urls, full.final.journal / 2);
      const rest = await runOnce(input, resumed, urls);
      const same =
        (await readFile(path.join(work, 'full', 'index.json'), 'utf8')) ===
        (await readFile(path.join(resumed, 'index.json'), 'utf8'));
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'inspect', resumed, '--json']);
      const valid = (JSON.parse(stdout) as { valid: boolean }).valid;
      console.log(
        `  resume: killed (${killed.signal}) after ${killed.seconds.toFixed(0)} s, rerun ${rest.seconds.toFixed(0)} s ` +
          `(${rest.summary?.generate.requests.replayed ?? 0} of ${summary.generate.requests.completed} requests replayed ` +
          `from the journal); index.json ${same ? 'identical to' : 'DIFFERENT from'} the uninterrupted run's (its ` +
          `sha1 per shard), inspect ${valid ? 'valid' : 'INVALID'}; peak RSS of the rerun ${mb(rest.peakRss)}; ` +
          `both runs: ${await simFigures(sims, killed.seconds + rest.seconds)}`,
      );
    }
  } finally {
    for (const sim of sims) sim.process.kill('SIGTERM');
    if (!values.keep) await rm(work, { recursive: true, force: true });
  }
}

await main();
