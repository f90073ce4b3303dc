// Hashes pulled files on one worker thread (by path, after they are written), so the downloads keep the main
// thread; answers each file's digest (sha256, or git's blob sha1) and size. One thread per process, started once.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** What the worker is asked: hash the file at `path` with `algorithm`, after `prefix` (git's `blob SIZE\0`). */
export interface HashRequest {
  id: number;
  path: string;
  algorithm: 'sha256' | 'sha1';
  prefix: string;
}

/** Its answer: the hex digest and the bytes read, or why the file could not be read. */
export type HashReply = { id: number; digest: string; size: number } | { id: number; error: string };

export interface FileDigest {
  digest: string;
  size: number;
}

interface Waiting {
  resolve: (result: FileDigest) => void;
  reject: (error: Error) => void;
}

/**
 * How to start the worker. Built, hash-worker.js sits next to this file. From the TypeScript sources (vitest,
 * tsx) only hash-worker.ts exists, and Node 20 cannot load it directly: a one-line bootstrap registers tsx first.
 */
function workerEntry(): { script: string | URL; eval: boolean } {
  const compiled = new URL('./hash-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return { script: compiled, eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const source = new URL('./hash-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`;
  return { script: bootstrap, eval: true };
}

/**
 * The hashing thread shared by all downloads (requests run concurrently on it). It holds the process open only
 * while a request is in flight; a failed worker is retired and the next call of fileHasher() starts a new one.
 */
export class FileHasher {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor() {
    const entry = workerEntry();
    this.worker = new Worker(entry.script, { eval: entry.eval });
    this.worker.unref();
    this.worker.on('message', (reply: HashReply) => this.settle(reply));
    this.worker.on('error', (error) => this.retire(error));
    this.worker.on('exit', (code) => this.retire(new Error(`the hashing worker exited with code ${code}`)));
  }

  /** The digest of the file at `path`, hashed after `prefix`, and its size. */
  hash(path: string, algorithm: HashRequest['algorithm'], prefix = ''): Promise<FileDigest> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, path, algorithm, prefix } satisfies HashRequest);
    });
  }

  private settle(reply: HashReply): void {
    const waiting = this.waiting.get(reply.id);
    this.waiting.delete(reply.id);
    if (this.waiting.size === 0) this.worker.unref();
    if ('error' in reply) waiting?.reject(new Error(reply.error));
    else waiting?.resolve(reply);
  }

  private retire(error: Error): void {
    this.failure ??= error;
    if (sharedHasher === this) sharedHasher = undefined;
    for (const waiting of this.waiting.values()) waiting.reject(error);
    this.waiting.clear();
    void this.worker.terminate();
  }
}

let sharedHasher: FileHasher | undefined;

/** The process's hashing thread, started on the first call (it takes tens of milliseconds to boot). */
export function fileHasher(): FileHasher {
  sharedHasher ??= new FileHasher();
  return sharedHasher;
}
