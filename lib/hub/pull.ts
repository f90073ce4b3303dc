// Mirrors Hub files to disk with the repo's layout: bounded parallelism, size + LFS sha256 (or git oid) checks,
// resume (complete files skipped, partial `.incomplete` files continued by Range or restarted), atomic landing.
import { setMaxListeners } from 'node:events';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { MegadocsError, messageOf } from '../errors.js';
import type { HubClient } from './client.js';
import type { HubFile } from './files.js';
import { fileHasher } from './hasher.js';
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
  const context: PullContext = {
    client,
    attempts: options.attempts ?? 4,
    onBytes,
    signal,
  };
  fileHasher(); // boots the hashing thread now, beside the first downloads
  let next = 0;
  const worker = async () => {
    while (next < files.length && !signal.aborted) {
      const file = files[next++];
      const outcome = await pullFile(file, destination(dir, file), context);
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

interface PullContext {
  client: HubClient;
  attempts: number;
  onBytes: (count: number) => void;
  signal: AbortSignal;
}

async function pullFile(file: HubFile, target: string, context: PullContext): Promise<PullOutcome> {
  const [existing] = await Promise.all([
    fs.stat(target).catch(() => undefined),
    fs.mkdir(path.dirname(target), { recursive: true }),
  ]);
  if (existing?.isFile() && existing.size === file.size) return 'skipped';
  const partial = target + PARTIAL_SUFFIX;
  for (let attempt = 1; ; attempt += 1) {
    const offset = await usableOffset(partial, file.size);
    try {
      const resumed = await download(file, partial, offset, context);
      await verify(file, partial);
      await fs.rename(partial, target); // atomic: a complete path is always a complete, verified file
      return resumed ? 'resumed' : 'downloaded';
    } catch (error) {
      if (error instanceof MegadocsError && error.code === 'CORRUPT') await fs.rm(partial, { force: true });
      if (context.signal.aborted || attempt >= context.attempts || !isRetryable(error)) throw error;
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

/**
 * Appends the rest of the file to `partial` from `offset` (or rewrites it if the server sends it whole);
 * resolves to whether earlier bytes were kept.
 */
async function download(
  file: HubFile,
  partial: string,
  offset: number,
  context: PullContext,
): Promise<boolean> {
  if (offset === file.size && offset > 0) return true;
  const response = await fetchHubFile(context.client, file, offset, undefined, {
    allowWhole: true,
    signal: context.signal,
  });
  const resumed = offset > 0 && response.status === 206;
  await appendBody(response.body, partial, resumed, context.onBytes);
  return resumed;
}

/**
 * Pipes a response body into `partial` (appending or from scratch). When the transfer breaks, what arrived
 * is still flushed to disk before the error is thrown, so the next try resumes from there.
 */
async function appendBody(
  body: Readable,
  partial: string,
  append: boolean,
  onBytes: (count: number) => void,
): Promise<void> {
  const out = createWriteStream(partial, { flags: append ? 'a' : 'w' });
  out.on('error', (error) => body.destroy(error));
  body.on('data', (chunk: Buffer) => onBytes(chunk.length));
  body.pipe(out);
  const broken = await finished(body).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (broken) out.end(); // flushes what arrived (a completed body ends `out` through the pipe)
  await finished(out);
  if (broken) throw broken;
}

/**
 * Checks the whole partial file (kept and new bytes alike) against the listing: its size, and the sha256 of LFS
 * files or the git blob sha1 of others, hashed on the hashing thread.
 */
async function verify(file: HubFile, partial: string): Promise<void> {
  const expected = file.sha256 ?? file.gitOid;
  const { size, digest } = file.sha256
    ? await fileHasher().hash(partial, 'sha256')
    : file.gitOid
      ? await fileHasher().hash(partial, 'sha1', `blob ${file.size}\0`)
      : { size: (await fs.stat(partial)).size, digest: undefined };
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
