// Hashes pulled files on one worker thread (by path, after they are written), so the downloads keep the main
// thread; answers each file's digest (sha256, or git's blob sha1) and size. One thread per process, started once.
import type { Worker } from 'node:worker_threads';
import { startWorker, stopWorker } from '../worker-entry.js';

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
 * The hashing thread shared by all downloads (requests run concurrently on it). It holds the process open only
 * while a request is in flight; a failed worker is retired and the next call of fileHasher() starts a new one.
 */
export class FileHasher {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor() {
    this.worker = startWorker(import.meta.url, 'hash-worker');
    this.worker.on('message', (reply: HashReply) => this.settle(reply));
    this.worker.on('error', (error) => this.retire(error));
    this.worker.on('exit', (code) => this.retire(new Error(`the hashing worker exited with code ${code}`)));
    // After the listeners: on Node 20 adding a 'message' listener refs the worker again, and an idle hasher
    // (a pull with every file complete already) would then keep the process from ever exiting.
    this.worker.unref();
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
    void stopWorker(this.worker);
  }
}

let sharedHasher: FileHasher | undefined;

/** The process's hashing thread, started on the first call (it takes tens of milliseconds to boot). */
export function fileHasher(): FileHasher {
  sharedHasher ??= new FileHasher();
  return sharedHasher;
}
