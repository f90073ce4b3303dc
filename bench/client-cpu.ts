// The client's CPU per request: the whole `megadocs generate` command (start-up, reading, prompts, journal,
// post-processing, shards, exit) next to the bare asyncio + aiohttp anchor, on one loopback server of its own.
// CPU is user + sys of each whole process (bash `times`), not wall time: steady on a machine shared with others.
// Run: npm run bench:client-cpu [-- --latency-ms L --concurrency C --repeats R --answer-repeat K]
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, startLlmServer, stopLlmServer } from './llm-server.js';

/** Wikipedia-sized documents, each sent once (no document is asked twice). */
const DATA_FILE = path.resolve(REPO, '../shared/data/wikipedia-2349.jsonl');
const MEGADOCS = path.join(REPO, 'dist/bin/megadocs.js');
const ANCHOR = path.join(REPO, 'bench/anchor_aiohttp.py');

const { values } = parseArgs({
  options: {
    'latency-ms': { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '64' },
    repeats: { type: 'string', default: '3' },
    /** The server's answer repeated this many times in the large-answer case (~5 KB). */
    'answer-repeat': { type: 'string', default: '8' },
  },
});
const LATENCY_MS = Number(values['latency-ms']);
const CONCURRENCY = Number(values.concurrency);
const REPEATS = Number(values.repeats);
const ANSWER_REPEAT = Number(values['answer-repeat']);
const DOCUMENTS = readFileSync(DATA_FILE, 'utf8').trim().split('\n').length;

interface ProcessCost {
  /** User + sys CPU of the whole process, in seconds. */
  cpuSeconds: number;
  stdout: string;
}

/** Runs a command to its end under bash, whose `times` reports the child's user and sys CPU. */
function measured(command: string, args: string[], scratch: string): ProcessCost {
  const stdoutFile = path.join(scratch, 'stdout');
  const run = spawnSync(
    'bash',
    ['-c', '"$@" >"$STDOUT_FILE" 2>&1; status=$?; times; exit $status', 'bash', command, ...args],
    { encoding: 'utf8', env: { ...process.env, STDOUT_FILE: stdoutFile } },
  );
  const stdout = readFileSync(stdoutFile, 'utf8');
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${run.status}:\n${stdout}`);
  // `times`: the shell's own user/sys, then its children's, as 0m1.234s 0m0.567s.
  const children = run.stdout.trim().split('\n').at(-1) ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(([, m, s]) => Number(m) * 60 + Number(s));
  if (seconds.length !== 2) throw new Error(`cannot read the CPU times from "${children}"`);
  return { cpuSeconds: seconds[0]! + seconds[1]!, stdout };
}

interface GenerateRun {
  cpuSeconds: number;
  requests: number;
  answerBytes: number;
}

/** `megadocs generate` over `data`, one request per document, into a fresh --out. */
function megadocsGenerate(url: string, data: string, scratch: string): GenerateRun {
  const out = path.join(scratch, `out-${Date.now()}`);
  const args = [MEGADOCS, 'generate', data, '--out', out, '--llm', url, '--model', 'bench-model'];
  args.push('--generations', '1', '--styles', 'wiki', '--concurrency', String(CONCURRENCY));
  const { cpuSeconds } = measured(process.execPath, args, scratch);
  const manifest = JSON.parse(readFileSync(path.join(out, 'megadocs.json'), 'utf8')) as {
    stats: { requests: { completed: number }; generations: number; rawBytes: number };
  };
  const { requests, generations, rawBytes } = manifest.stats;
  return { cpuSeconds, requests: requests.completed, answerBytes: rawBytes / Math.max(1, generations) };
}

/** The first Python that has aiohttp (pyenv's python3 may lack Debian's python3-aiohttp). */
function anchorPython(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import aiohttp'], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) return python;
  }
  return undefined;
}

interface AnchorRun {
  cpuSeconds: number;
  requests: number;
  /** The anchor's own figure: CPU of its request loop only (no start-up, no reading). */
  loopMicrosPerRequest: number;
}

function anchor(python: string, url: string, scratch: string): AnchorRun {
  const args = [ANCHOR, '--url', url, '--concurrency', String(CONCURRENCY)];
  args.push('--requests', String(DOCUMENTS), '--data', DATA_FILE);
  const { cpuSeconds, stdout } = measured(python, args, scratch);
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    requests: number;
    cpuMicrosPerRequest: number;
  };
  return { cpuSeconds, requests: report.requests, loopMicrosPerRequest: report.cpuMicrosPerRequest };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const micros = (seconds: number, requests: number) => (seconds * 1e6) / requests;

/** Megadocs and the anchor in turn, REPEATS times each, against one server; medians of us/request. */
async function compare(label: string, answerRepeat: number, python: string | undefined): Promise<void> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'megadocs-bench-client-cpu-'));
  const server = await startLlmServer(LATENCY_MS, undefined, answerRepeat);
  try {
    // A few documents: the command's fixed cost (start-up, run directory, shard, exit) on its own.
    const few = path.join(scratch, 'few.jsonl');
    writeFileSync(few, `${readFileSync(DATA_FILE, 'utf8').split('\n').slice(0, 5).join('\n')}\n`);
    const fixed: number[] = [];
    const ours: number[] = [];
    const theirs: number[] = [];
    const theirLoop: number[] = [];
    let answerBytes = 0;
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      fixed.push(megadocsGenerate(server.url, few, scratch).cpuSeconds);
      const run = megadocsGenerate(server.url, DATA_FILE, scratch);
      if (run.requests !== DOCUMENTS) throw new Error(`megadocs answered ${run.requests} of ${DOCUMENTS}`);
      ours.push(micros(run.cpuSeconds, run.requests));
      answerBytes = run.answerBytes;
      if (!python) continue;
      const other = anchor(python, server.url, scratch);
      theirs.push(micros(other.cpuSeconds, other.requests));
      theirLoop.push(other.loopMicrosPerRequest);
    }
    const ourFigure = median(ours);
    console.log(
      `${label}: ${DOCUMENTS} requests, C=${CONCURRENCY}, L=${LATENCY_MS} ms, ~${(answerBytes / 1000).toFixed(1)} KB ` +
        `per output record, median of ${REPEATS}`,
    );
    console.log(
      `  megadocs generate  ${ourFigure.toFixed(0).padStart(5)} us CPU/request (whole process; ` +
        `start-up and exit alone: ${(median(fixed) * 1000).toFixed(0)} ms)`,
    );
    if (!python) {
      console.log('  anchor skipped: install python3-aiohttp (apt-get install -y python3-aiohttp)');
      return;
    }
    const anchorFigure = median(theirs);
    console.log(
      `  asyncio + aiohttp  ${anchorFigure.toFixed(0).padStart(5)} us CPU/request (whole process; ` +
        `its request loop alone: ${median(theirLoop).toFixed(0)} us)`,
    );
    console.log(`  ratio megadocs / anchor: ${(ourFigure / anchorFigure).toFixed(2)}`);
  } finally {
    await stopLlmServer(server);
    await rm(scratch, { recursive: true, force: true });
  }
}

const python = anchorPython();
await compare('Wikipedia-sized documents', 1, python);
await compare('~5 KB answers', ANSWER_REPEAT, python);
