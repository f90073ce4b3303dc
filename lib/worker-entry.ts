// Starting one of our worker threads both when built and when running from the TypeScript sources.
// Built, NAME.js sits next to the module that starts it; from the sources (vitest, tsx) only NAME.ts exists,
// and Node 20 cannot load it directly (`execArgv: ['--import', 'tsx']` still fails with "Unknown file
// extension .ts"): a one-line bootstrap registers tsx first, then imports NAME.ts.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** A Worker running the module `name` (without extension) that sits beside `base` (the caller's import.meta.url). */
export function startWorker(base: string, name: string, options: WorkerOptions = {}): Worker {
  const compiled = new URL(`./${name}.js`, base);
  if (existsSync(fileURLToPath(compiled))) return new Worker(compiled, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const source = new URL(`./${name}.ts`, base).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
