// Runs the built CLI (dist/bin/megadocs.js) as a child process, the way a user or a script would.
// `npm test` builds first; run `npm run build` before running one test file by hand.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const SHARED_DATA = resolve(REPO_ROOT, '../shared/data');
export const SHARED_TOKENIZERS = resolve(REPO_ROOT, '../shared/tokenizers');
export const CLI = join(REPO_ROOT, 'dist/bin/megadocs.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function waitCli(child: ChildProcess): Promise<CliResult> {
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolvePromise({ code, signal, stdout: Buffer.concat(stdout), stderr }),
    );
  });
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return waitCli(startCli(args, env));
}

export function tempDir(prefix = 'megadocs-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
