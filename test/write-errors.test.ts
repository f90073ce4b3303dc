// Clear errors and nothing half-written when the output cannot be written: an unwritable --out (chattr +i, or
// chmod for a user who is not root) and a full disk (a small tmpfs) end with exit 2 and a message that says why.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MegadocsError } from '../lib/errors.js';
import { RunDir } from '../lib/rundir.js';
import { runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const SAMPLE = join(SHARED_DATA, 'fineweb-300.jsonl');

let dir: string;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  dir = await tempDir('megadocs-write-errors-');
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) cleanup();
  await rm(dir, { recursive: true, force: true });
});

function tryRun(command: string, args: string[]): string | undefined {
  try {
    execFileSync(command, args, { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `${command} ${args.join(' ')}: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** A folder nobody can create files in: chattr +i (root ignores permission bits), or chmod 555. */
async function unwritableDir(): Promise<string | { skip: string }> {
  const path = join(dir, 'unwritable');
  await mkdir(path);
  const failure = process.getuid?.() === 0 ? tryRun('chattr', ['+i', path]) : tryRun('chmod', ['555', path]);
  if (failure) return { skip: failure };
  cleanups.push(() => {
    tryRun('chattr', ['-i', path]);
    tryRun('chmod', ['755', path]);
  });
  const probe = await writeFile(join(path, 'probe'), '').then(
    () => 'files can still be created in it',
    () => undefined,
  );
  return probe ? { skip: probe } : path;
}

/** A tmpfs of `size` mounted in the test's folder (needs root). */
async function smallDisk(name: string, size: string): Promise<string | { skip: string }> {
  const path = join(dir, name);
  await mkdir(path);
  const failure = tryRun('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path]);
  if (failure) return { skip: failure };
  cleanups.push(() => tryRun('umount', [path]));
  return path;
}

/** Every file below `root`, relative. */
async function filesBelow(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

function skipWith(reason: string, skip: (note?: string) => void): void {
  console.warn(`skipped: ${reason}`);
  skip(reason);
}

describe('an unwritable --out', () => {
  it('ends with exit 2 and a message naming the path, with no stack trace', async ({ skip }) => {
    const locked = await unwritableDir();
    if (typeof locked !== 'string') return skipWith(`cannot make a folder unwritable: ${locked.skip}`, skip);
    for (const [out, where, what] of [
      [join(locked, 'out'), join(locked, 'out'), 'cannot create the output directory'],
      [locked, join(locked, '.megadocs.lock'), 'cannot create the lock file of the output directory'],
    ]) {
      const result = await runCli([
        'pack',
        SAMPLE,
        '--out',
        out!,
        '--seq-len',
        '128',
        '--workers',
        '0',
        '-q',
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr.startsWith(`megadocs: ${where}: ${what} (`)).toBe(true);
      expect(result.stderr).toMatch(/\((EPERM|EACCES): /);
      expect(result.stderr).toContain('Choose an --out you can write to, or fix its permissions');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('a full disk', () => {
  let server: OpenAiTestServer;
  beforeAll(async () => {
    server = await startOpenAiServer();
  });
  afterAll(() => server.close());

  it('during `run`: reports ENOSPC and the file, leaves no temporary file, records the failure, exits 2', async ({
    skip,
  }) => {
    // 300 KB: the megadocs.json of the start fits, the journal of 300 documents' answers (~700 KB) does not.
    const disk = await smallDisk('disk-run', '300k');
    if (typeof disk !== 'string') return skipWith(`cannot mount a small tmpfs: ${disk.skip}`, skip);
    const out = join(disk, 'out');
    const result = await runCli([
      'run',
      SAMPLE,
      '--out',
      out,
      '--llm',
      server.url,
      '--model',
      'test-model',
      '--seq-len',
      '128',
      '--workers',
      '0',
      '-q',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`^megadocs: ${out}/\\S+: cannot .*\\(ENOSPC: no space left on device`),
    );
    expect(result.stderr).toContain('Check free space');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect((await filesBelow(out)).filter((name) => name.includes('.tmp'))).toEqual([]);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.status).toBe('failed');
    expect(manifest.error).toContain('ENOSPC');
  });

  it('when megadocs.json itself cannot be written: the ENOSPC names it, and the stop is still recorded', async ({
    skip,
  }) => {
    const disk = await smallDisk('disk-manifest', '64k');
    if (typeof disk !== 'string') return skipWith(`cannot mount a small tmpfs: ${disk.skip}`, skip);
    const out = join(disk, 'out');
    const runDir = await RunDir.open({ dir: out, command: 'pack', options: { seqLen: 128 } });
    try {
      // Fill the disk to the last byte.
      const filler = join(disk, 'filler');
      await writeFile(filler, '');
      for (let block = Buffer.alloc(4096); ; ) {
        const written = await writeFile(filler, block, { flag: 'a' }).then(
          () => true,
          () => false,
        );
        if (!written) break;
      }
      const failure = await runDir.complete({ sequences: 1 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(MegadocsError);
      expect((failure as Error).message).toMatch(
        new RegExp(`^${out}/megadocs.json: cannot write the file \\(ENOSPC: .*\\)\\. Check free space`),
      );
      expect(await filesBelow(out)).toEqual(['.megadocs.lock', 'megadocs.json']);
      // The failure is recorded in the space megadocs.json already holds.
      await runDir.stop('failed', failure, { sequences: 1 });
      const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
      expect(manifest.status).toBe('failed');
      expect(manifest.error).toContain('ENOSPC');
    } finally {
      runDir.release();
    }
  });
});
