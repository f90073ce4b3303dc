// One writer per output directory: a second `run` on the same --out exits 2 at once naming the holder (also with
// --overwrite), a dead process's lock is taken over with a warning, another host's lock is refused.
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, OutputLock } from '../lib/output-lock.js';
import { REPO_ROOT, runCli, startCli, tempDir, waitCli } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { realInput } from './helpers/run-output.js';

const DOCUMENTS = 40;
const SAMPLE = join(REPO_ROOT, 'fixtures/web-sample.jsonl');

let server: OpenAiTestServer;
let dir: string;
let file: string;

beforeAll(async () => {
  server = await startOpenAiServer({ latency: 5 });
  dir = await tempDir('megadocs-output-lock-');
  ({ file } = await realInput(dir, DOCUMENTS));
});
afterAll(() => server.close());

function runArgs(out: string, ...extra: string[]): string[] {
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
    '2',
    '--generations',
    '2',
    '--seq-len',
    '128',
    '--workers',
    '0',
    '--quiet',
    ...extra,
  ];
}

/** A PID no process has: one that just exited (and was reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('close', resolve));
  return child.pid!;
}

describe('one writer per output directory', () => {
  for (const extra of [[], ['--overwrite']]) {
    it(`refuses a second run on the same --out at once${extra.length ? ' (even with --overwrite)' : ''}`, async () => {
      const out = join(dir, `concurrent${extra.join('')}`);
      server.reset();
      const first = startCli(runArgs(out));
      const firstDone = waitCli(first);
      let firstEnded = false;
      void firstDone.then(() => {
        firstEnded = true;
      });
      // Once the first run holds the lock (it sends requests), it is paused while the second one tries.
      while (server.stats.received === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      first.kill('SIGSTOP');
      const second = await runCli(runArgs(out, ...extra));
      expect(firstEnded).toBe(false);
      first.kill('SIGCONT');
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(`megadocs: ${out}: another process writes this output directory`);
      expect(second.stderr).toContain(`\`megadocs run\` (PID ${first.pid} on host ${hostname()}, since 20`);
      expect(second.stderr.trim().split('\n')).toHaveLength(1);

      const result = await firstDone;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // Each request was paid once: the second run sent none.
      expect(server.stats.received).toBe(DOCUMENTS);
      expect([...server.stats.receivedBySeed.values()].every((count) => count === 1)).toBe(true);
      expect(JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')).status).toBe('complete');
      expect(await readdir(out)).not.toContain(LOCK_FILE);
    });
  }

  it('takes over the lock of a process that died on this host, with a warning', async () => {
    const out = join(dir, 'stale');
    const pid = await deadPid();
    // A run killed before it finished leaves its lock behind.
    await mkdir(out);
    const since = '2026-01-02T03:04:05.000Z';
    await writeFile(join(out, LOCK_FILE), JSON.stringify({ pid, host: hostname(), since, command: 'pack' }));
    const result = await runCli([
      'pack',
      SAMPLE,
      '--out',
      out,
      '--seq-len',
      '128',
      '--workers',
      '0',
      '--overwrite',
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `warning: ${out}: took over the lock of \`megadocs pack\` (PID ${pid} on host ${hostname()}, since ${since}), which is no longer running`,
    );
    expect(await readdir(out)).not.toContain(LOCK_FILE);
  });

  it("refuses another host's lock and says how to remove it if it is stale", async () => {
    const out = join(dir, 'elsewhere');
    await mkdir(out);
    await writeFile(join(out, 'data.jsonl'), '{"text": "kept"}\n');
    const lock = { pid: 4242, host: 'gpu-node-17', since: '2026-01-02T03:04:05.000Z', command: 'run' };
    await writeFile(join(out, LOCK_FILE), JSON.stringify(lock));
    const result = await runCli(['pack', SAMPLE, '--out', out, '--seq-len', '128', '--overwrite', '--quiet']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('(PID 4242 on host gpu-node-17, since 2026-01-02T03:04:05.000Z)');
    expect(result.stderr).toContain(
      `if that process is no longer running on gpu-node-17, delete ${join(out, LOCK_FILE)}`,
    );
    // --overwrite left the lock (and the output) alone.
    expect(JSON.parse(await readFile(join(out, LOCK_FILE), 'utf8'))).toEqual(lock);
    expect((await readdir(out)).sort()).toEqual([LOCK_FILE, 'data.jsonl'].sort());
  });

  it('refuses a second writer inside the same process, and lets the directory go on release()', async () => {
    const out = join(dir, 'in-process');
    const lock = OutputLock.acquire(out, 'pack');
    expect(() => OutputLock.acquire(out, 'pack')).toThrow(`PID ${process.pid} on host ${hostname()}`);
    lock.release();
    expect(await readdir(out)).not.toContain(LOCK_FILE);
    OutputLock.acquire(out, 'pack').release();
  });
});
