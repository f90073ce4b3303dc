// The loopback OpenAI-compatible test server (test/helpers/openai-server-main.ts) in a child process, for the
// benchmarks that need the server off their own CPU thread: a fixed latency, random faults, stopped with its CPU use.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** The repository root, from bench/ when run with tsx or from dist/bench/ when compiled. */
export const REPO = path.resolve(import.meta.dirname, import.meta.filename.endsWith('.ts') ? '..' : '../..');

export interface LlmServerProcess {
  url: string;
  process: ChildProcess;
  lines: AsyncIterator<string>;
}

/** A share of all tries answered with an HTTP status (and `Retry-After` seconds), seeded: the same tries each run. */
export interface ServerFaults {
  rate: number;
  status: number;
  retryAfterSeconds?: number;
}

function faultArgs(faults: ServerFaults | undefined): string[] {
  if (!faults) return [];
  const args = ['--fault-rate', String(faults.rate), '--fault-status', String(faults.status)];
  if (faults.retryAfterSeconds !== undefined) args.push('--retry-after', String(faults.retryAfterSeconds));
  return args;
}

/**
 * Starts the server answering after `latencyMs` (each answer its text `answerRepeat` times); resolves once it
 * listens.
 */
export async function startLlmServer(
  latencyMs: number,
  faults?: ServerFaults,
  answerRepeat = 1,
): Promise<LlmServerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(REPO, 'test/helpers/openai-server-main.ts'),
      '--latency-ms',
      String(latencyMs),
      '--answer-repeat',
      String(answerRepeat),
      ...faultArgs(faults),
    ],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error('the test server exited before listening');
  return { url: (JSON.parse(first.value) as { url: string }).url, process: child, lines };
}

/** Stops the server; resolves to its CPU per request served (its own share of the machine). */
export async function stopLlmServer(server: LlmServerProcess): Promise<number> {
  server.process.kill('SIGTERM');
  const last = await server.lines.next();
  return last.done
    ? Number.NaN
    : (JSON.parse(last.value) as { cpuMicrosPerRequest: number }).cpuMicrosPerRequest;
}
