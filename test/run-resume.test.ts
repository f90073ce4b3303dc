// End to end: `megadocs run` gives byte-identical shards whatever --concurrency and the order answers arrive
// in, and after kill -9 a rerun sends no completed request again and ends with the same bytes.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE } from '../lib/output-lock.js';
import { type CliResult, runCli, startCli, tempDir, waitCli } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { datasetFiles, realInput } from './helpers/run-output.js';

let server: OpenAiTestServer;
let dir: string;
let file: string;

beforeAll(async () => {
  // Answers take 2..30 ms each, drawn per request: they come back in a different order at each concurrency.
  server = await startOpenAiServer({ latency: { uniform: [2, 30] } });
  dir = await tempDir('megadocs-run-resume-');
  ({ file } = await realInput(dir, 48));
});
afterAll(() => server.close());

function args(out: string, concurrency: number): string[] {
  return [
    'run',
    file,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--concurrency',
    String(concurrency),
    '--workers',
    '1',
    '--quiet',
    '--generations',
    '2',
    '--n-per-request',
    '1',
    '--seq-len',
    '128',
    '--boundaries',
    '--real-epochs',
    '2',
    '--synthetic-weight',
    '0.7',
    '--shuffle-seed',
    '3',
  ];
}

/** A rerun after kill -9 may say that it took over the killed run's lock; nothing else reaches stderr. */
const TAKEOVER_WARNING =
  /^warning: \S+: took over the lock of `megadocs run` \(PID \d+ on host \S+, since \S+\), which is no longer running\n/;

async function runTo(out: string, concurrency: number): Promise<void> {
  const result = await runCli(args(out, concurrency));
  expect(result.stderr.replace(TAKEOVER_WARNING, '')).toBe('');
  expect(result.code).toBe(0);
}

/** The seeds of the requests a run's journal holds (the server writes `s<seed>c<choice>` first in each answer). */
async function journaledSeeds(out: string): Promise<number[]> {
  const seeds: number[] = [];
  for (const name of (await readdir(join(out, 'state'))).filter((entry) => entry.includes('journal'))) {
    const lines = (await readFile(join(out, 'state', name), 'utf8')).split('\n').slice(1).filter(Boolean);
    for (const line of lines) {
      let entry: { r?: { choices: Array<{ text: string }> } };
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // a torn last line: that request is not journaled
      }
      const marker = /^s(\d+)c0/.exec(entry.r?.choices[0]?.text ?? '');
      if (marker) seeds.push(Number(marker[1]));
    }
  }
  return seeds;
}

/** Starts the run and sends `signal` once the server has answered `answered` requests. */
async function signalWhenAnswered(
  cliArgs: string[],
  answered: number,
  signal: NodeJS.Signals,
): Promise<CliResult> {
  const child = startCli(cliArgs);
  const exited = waitCli(child);
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (server.stats.completed >= answered) {
        clearInterval(poll);
        child.kill(signal);
        resolve();
      }
    }, 2);
    exited.then(() => {
      clearInterval(poll);
      reject(new Error('the run ended before the signal could be sent'));
    }, reject);
  });
  return exited;
}

describe('megadocs run: determinism and resume', () => {
  let reference: Record<string, string>;

  it('writes byte-identical shards at --concurrency 4 and 64', async () => {
    server.reset();
    const slow = join(dir, 'c4');
    await runTo(slow, 4);
    expect(server.stats.maxInFlight).toBeLessThanOrEqual(4);
    server.reset();
    const fast = join(dir, 'c64');
    await runTo(fast, 64);
    expect(server.stats.maxInFlight).toBeGreaterThan(4);
    reference = await datasetFiles(slow);
    expect(Object.keys(reference).some((name) => name.endsWith('.mds.zstd'))).toBe(true);
    expect(await datasetFiles(fast)).toEqual(reference);
  });

  it('after kill -9, reruns only what the journal lacks and ends with the same bytes', async () => {
    const out = join(dir, 'killed');
    server.reset();
    const result = await signalWhenAnswered(args(out, 4), 30, 'SIGKILL');
    expect(result.signal).toBe('SIGKILL');
    expect(await readdir(out)).toContain(LOCK_FILE); // left by the killed run, taken over by the rerun
    const journaled = new Set(await journaledSeeds(out));
    expect(journaled.size).toBeGreaterThanOrEqual(20);
    expect(journaled.size).toBeLessThan(96);

    server.reset();
    await runTo(out, 4);
    const resent = [...server.stats.receivedBySeed.keys()].filter((seed) => journaled.has(seed));
    expect(resent).toEqual([]);
    expect(server.stats.received).toBe(96 - journaled.size);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.status).toBe('complete');
    expect(manifest.stats.generate.requests.replayed).toBe(journaled.size);
    expect(await datasetFiles(out)).toEqual(reference);
  });

  it('on Ctrl-C stops with 130, marks the run interrupted, writes no index, and a rerun completes it', async () => {
    const out = join(dir, 'interrupted');
    server.reset();
    const result = await signalWhenAnswered(args(out, 4), 20, 'SIGINT');
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('interrupted; run the same command again to continue');
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.status).toBe('interrupted');
    expect(await readdir(out)).not.toContain('index.json');
    expect(await readdir(out)).not.toContain(LOCK_FILE);
    await runTo(out, 4);
    expect(await datasetFiles(out)).toEqual(reference);
  });
});

/** Every file under `out` (hidden ones too) with its bytes and modification time. */
async function snapshot(out: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(out, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path);
    files[path] = `${(await stat(path)).mtimeMs} ${createHash('sha256').update(bytes).digest('hex')}`;
  }
  return files;
}

describe('megadocs run: a rerun of a complete run', () => {
  it('exits 0 at once saying "already complete", sends no request and changes nothing; --overwrite redoes it', async () => {
    const out = join(dir, 'rerun');
    await runTo(out, 4);
    const before = await snapshot(out);
    server.reset();
    const again = await runCli(args(out, 4));
    expect(again.code).toBe(0);
    expect(again.stderr).toBe(
      `megadocs run: ${out} is already complete (the same command and options): nothing to do. Pass --overwrite to run it again\n`,
    );
    expect(server.stats.received).toBe(0);
    expect(await snapshot(out)).toEqual(before);
    // --json prints the summary the run recorded.
    const json = await runCli([...args(out, 4), '--json']);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(JSON.parse(json.stdout)).toEqual({ ...manifest.stats, alreadyComplete: true });
    // Other options are still refused; --overwrite runs it again.
    const other = await runCli([...args(out, 4), '--seed', '9']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/different options: seed was 0, now 9/);
    server.reset();
    expect((await runCli([...args(out, 4), '--overwrite'])).code).toBe(0);
    expect(server.stats.received).toBe(96);
  });

  it('of `pack`, `generate` and `merge` exits 0 the same way', async () => {
    const packed = join(dir, 'ranks');
    const pack = (rank: number) => [
      'pack',
      file,
      '--out',
      packed,
      '--rank',
      String(rank),
      '--world-size',
      '2',
      '--seq-len',
      '128',
      '--workers',
      '0',
      '--quiet',
    ];
    for (const rank of [0, 1]) expect((await runCli(pack(rank))).code).toBe(0);
    const rank1 = join(packed, 'rank-00001');
    const before = await snapshot(rank1);
    const again = await runCli(pack(1));
    expect([again.code, again.stderr]).toEqual([
      0,
      `megadocs pack: ${rank1} is already complete (the same command and options): nothing to do. Pass --overwrite to run it again\n`,
    ]);
    expect(await snapshot(rank1)).toEqual(before);

    expect((await runCli(['merge', packed, '--quiet'])).code).toBe(0);
    const merged = await snapshot(packed);
    const remerge = await runCli(['merge', packed, '--quiet']);
    expect([remerge.code, remerge.stderr]).toEqual([
      0,
      `megadocs merge: ${packed} is already complete (the same command and options): nothing to do\n`,
    ]);
    expect(await snapshot(packed)).toEqual(merged);

    const generated = join(dir, 'generated');
    const generate = [
      'generate',
      file,
      '--out',
      generated,
      '--llm',
      server.url,
      '--model',
      'test-model',
      '-q',
    ];
    expect((await runCli(generate)).code).toBe(0);
    server.reset();
    const regenerate = await runCli(generate);
    expect(regenerate.code).toBe(0);
    expect(regenerate.stderr).toContain(`megadocs generate: ${generated} is already complete`);
    expect(server.stats.received).toBe(0);
  });
});

describe('megadocs run: failures', () => {
  it('stops at once on a server that refuses the credentials, names the request and records the failure', async () => {
    const guarded = await startOpenAiServer({ apiKey: 'sk-right' });
    try {
      const out = join(dir, 'refused');
      const result = await runCli(
        [
          'run',
          file,
          '--out',
          out,
          '--llm',
          guarded.url,
          '--model',
          'test-model',
          '--workers',
          '0',
          '--quiet',
        ],
        { OPENAI_API_KEY: 'sk-wrong' },
      );
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^megadocs: .*401/);
      const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
      expect(manifest.status).toBe('failed');
      expect(manifest.error).toContain('401');
      expect(await readdir(out)).not.toContain('index.json');
    } finally {
      await guarded.close();
    }
  });
});
