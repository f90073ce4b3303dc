// Starting and stopping our worker threads. Built, NAME.js sits next to the module that starts it; from the
// sources (vitest, tsx) only NAME.ts exists, and Node 20 cannot load it directly (`execArgv: ['--import', 'tsx']`
// still fails with "Unknown file extension .ts"): a one-line bootstrap registers tsx first, then imports NAME.ts.
// A worker is stopped by asking it to close its port, so its thread ends on its own once idle: Node 20 can abort
// the whole process ("Assertion failed: (data.first) != nullptr" in NodePlatform::ForIsolate) when
// worker.terminate() lands while V8 still compiles for that thread, so terminate() is only the fallback.
// Worse, a thread that ends while an optimizing compile for it runs on V8's background threads can hang for
// ever: the compile waits for a GC on that thread, which waits for the compile to finish (nodejs/node#54918;
// seen here as a run that never returned, one worker parked in NodePlatform::DrainTasks). So our workers'
// isolates compile on their own thread (--no-concurrent-recompilation, set before the first one starts; V8
// reads it when an isolate is created, so the main thread keeps compiling concurrently).
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { type MessagePort, Worker, type WorkerOptions } from 'node:worker_threads';

/** The message that asks one of our workers to close its port (and so end its thread). */
const STOP_REQUEST = 'megadocs:stop-worker';

/** How long a worker asked to stop may take (it finishes the request it is on) before it is terminated. */
const STOP_GRACE_MS = 10_000;

let workersCompileOnTheirThread = false;

/** A Worker running the module `name` (without extension) that sits beside `base` (the caller's import.meta.url). */
export function startWorker(base: string, name: string, options: WorkerOptions = {}): Worker {
  if (!workersCompileOnTheirThread) {
    setFlagsFromString('--no-concurrent-recompilation');
    workersCompileOnTheirThread = true;
  }
  const compiled = new URL(`./${name}.js`, base);
  if (existsSync(fileURLToPath(compiled))) return new Worker(compiled, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const source = new URL(`./${name}.ts`, base).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** In a worker: hands every message to `handle`, except a stop request, which closes the port. */
export function serveMessages<Message>(port: MessagePort, handle: (message: Message) => unknown): void {
  port.on('message', (message: Message | typeof STOP_REQUEST) => {
    if (message === STOP_REQUEST) port.close();
    else handle(message);
  });
}

/**
 * Asks a worker (one that serves its messages with serveMessages) to stop and resolves once its thread has
 * ended; one that has not within STOP_GRACE_MS is terminated. Safe on a worker that has already exited.
 */
export async function stopWorker(worker: Worker): Promise<void> {
  if (worker.threadId === -1) return;
  const exited = once(worker, 'exit').catch(() => undefined);
  worker.postMessage(STOP_REQUEST);
  const fallback = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
  await exited;
  clearTimeout(fallback);
}
