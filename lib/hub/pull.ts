// Mirrors Hub files to disk with the repo's layout: bounded parallelism, size + LFS sha256 (or git oid) checks,
// resume (complete files skipped, partial `.incomplete` files continued by Range or restarted), atomic landing.
import { createHash, type Hash } from 'node:crypto';
import { once, setMaxListeners } from 'node:events';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MegadocsError, messageOf } from '../errors.js';
import type { HubClient } from './client.js';
import type { HubFile } from './files.js';
import { fetchHubFile, hubFileName } from './shard.js';

export interface PullOptions {
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Tries per file when a transfer breaks; each try resumes where the last stopped (default 4). */
  attempts?: number;
  /** Called for every chunk written (`bytes`) and once per finished file (`finished`). */
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
}

export interface PullProgress {
  bytes: number;
  finished?: { file: HubFile; outcome: PullOutcome };
}

export type PullOutcome = 'downloaded' | 'resumed' | 'skipped';

export interface PullSummary {
  files: number;
  downloaded: number;
  resumed: number;
  /** Already complete on disk. */
  skipped: number;
  /** Bytes received over the network. */
  bytes: number;
  /** Size of all files, skipped ones included. */
  totalBytes: number;
}

export const PARTIAL_SUFFIX = '.incomplete';

/** Downloads `files` into `dir` (as `dir/PATH`); resolves when all landed, rejects on the first failure. */
export async function pullHubFiles(
  files: HubFile[],
  dir: string,
  client: HubClient,
  options: PullOptions = {},
): Promise<PullSummary> {
  const summary: PullSummary = {
    files: files.length,
    downloaded: 0,
    resumed: 0,
    skipped: 0,
    bytes: 0,
    totalBytes: files.reduce((sum, file) => sum + file.size, 0),
  };
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  setMaxListeners(4 * concurrency + 10, signal);
  const onBytes = (count: number) => {
    summary.bytes += count;
    options.onProgress?.({ bytes: count });
  };
  let next = 0;
  const worker = async () => {
    while (next < files.length && !signal.aborted) {
      const file = files[next++];
      const outcome = await pullFile(
        file,
        destination(dir, file),
        client,
        options.attempts ?? 4,
        onBytes,
        signal,
      );
      summary[outcome] += 1;
      options.onProgress?.({ bytes: 0, finished: { file, outcome } });
    }
  };
  const workers = Array.from({ length: concurrency }, () =>
    worker().catch((error: unknown) => {
      stop.abort();
      throw error;
    }),
  );
  const results = await Promise.allSettled(workers);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) throw (failure as PromiseRejectedResult).reason;
  options.signal?.throwIfAborted();
  return summary;
}

/** `dir/PATH`, refusing paths that would land outside `dir`. */
function destination(dir: string, file: HubFile): string {
  const target = path.resolve(dir, file.path);
  if (!target.startsWith(path.resolve(dir) + path.sep)) {
    throw new MegadocsError('HUB', `the listed path "${file.path}" would land outside ${dir}`, {
      where: hubFileName(file),
      hint: 'Pull a narrower glob that leaves this file out',
    });
  }
  return target;
}

async function pullFile(
  file: HubFile,
  target: string,
  client: HubClient,
  attempts: number,
  onBytes: (count: number) => void,
  signal: AbortSignal,
): Promise<PullOutcome> {
  const existing = await fs.stat(target).catch(() => undefined);
  if (existing?.isFile() && existing.size === file.size) return 'skipped';
  await fs.mkdir(path.dirname(target), { recursive: true });
  const partial = target + PARTIAL_SUFFIX;
  for (let attempt = 1; ; attempt += 1) {
    const offset = await usableOffset(partial, file.size);
    try {
      const { digest, resumed } = await download(file, partial, offset, client, onBytes, signal);
      await verify(file, partial, digest);
      await fs.rename(partial, target); // atomic: a complete path is always a complete, verified file
      return resumed ? 'resumed' : 'downloaded';
    } catch (error) {
      if (error instanceof MegadocsError && error.code === 'CORRUPT') await fs.rm(partial, { force: true });
      if (signal.aborted || attempt >= attempts || !isRetryable(error)) throw error;
    }
  }
}

/** How many bytes of an `.incomplete` file can be kept (0 when there is none or it is longer than the file). */
async function usableOffset(partial: string, size: number): Promise<number> {
  const stats = await fs.stat(partial).catch(() => undefined);
  if (!stats) return 0;
  if (stats.size <= size) return stats.size;
  await fs.rm(partial, { force: true });
  return 0;
}

/** Appends the rest of the file to `partial` from `offset` (or rewrites it if the server sends it whole). */
async function download(
  file: HubFile,
  partial: string,
  offset: number,
  client: HubClient,
  onBytes: (count: number) => void,
  signal: AbortSignal,
): Promise<{ digest?: string; resumed: boolean }> {
  const hash = newHash(file);
  if (offset === file.size && offset > 0) {
    await feed(hash, partial);
    return { digest: hash?.digest('hex'), resumed: true };
  }
  const response = await fetchHubFile(client, file, offset, undefined, { allowWhole: true, signal });
  const resumed = offset > 0 && response.status === 206;
  if (resumed) await feed(hash, partial);
  await appendBody(response.body, partial, resumed, (chunk) => {
    hash?.update(chunk);
    onBytes(chunk.length);
  });
  return { digest: hash?.digest('hex'), resumed };
}

/**
 * Writes a response body to `partial` (appending or from scratch). When the transfer breaks, what arrived
 * is still flushed to disk before the error is thrown, so the next try resumes from there.
 */
async function appendBody(
  body: Readable,
  partial: string,
  append: boolean,
  onChunk: (chunk: Buffer) => void,
): Promise<void> {
  const out = createWriteStream(partial, { flags: append ? 'a' : 'w' });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      onChunk(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    }
  } finally {
    await new Promise<void>((resolve, reject) => {
      out.end((error?: Error | null) => (error ? reject(error) : resolve()));
    });
  }
}

/** The hash the listing gives for this file: sha256 for LFS files, the git blob sha1 for others. */
function newHash(file: HubFile): Hash | undefined {
  if (file.sha256) return createHash('sha256');
  if (file.gitOid) return createHash('sha1').update(`blob ${file.size}\0`);
  return undefined;
}

async function feed(hash: Hash | undefined, file: string): Promise<void> {
  if (!hash) return;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

async function verify(file: HubFile, partial: string, digest: string | undefined): Promise<void> {
  const { size } = await fs.stat(partial);
  const expected = file.sha256 ?? file.gitOid;
  const problem =
    size !== file.size
      ? `${size} bytes arrived, the Hub lists ${file.size}`
      : expected && digest !== expected
        ? `${file.sha256 ? 'sha256' : 'git oid'} ${digest} differs from the listed ${expected}`
        : undefined;
  if (!problem) return;
  throw new MegadocsError('CORRUPT', `the download is damaged: ${problem}`, {
    where: hubFileName(file),
    hint: 'Run the pull again (the damaged part was deleted); if it persists, the file changed on the Hub: pin a revision',
  });
}

/** Broken transfers and damaged downloads are worth another try; refusals (401, 404...) are not. */
function isRetryable(error: unknown): boolean {
  if (error instanceof MegadocsError) return error.code === 'CORRUPT';
  const message = messageOf(error);
  return !/ENOSPC|EACCES|EROFS|EISDIR/.test(message);
}
