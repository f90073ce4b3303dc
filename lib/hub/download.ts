// Downloads one Hub file to a path, for `pull` and the `local:hf:` model cache alike: a partial `.incomplete` file
// continued by Range (or restarted), size + LFS sha256 (or git oid) checked, renamed into place, retried.
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { MegadocsError, messageOf } from '../errors.js';
import { DOWNLOAD_RETRY_POLICY, type RetryCause, retryPolicy, withRetry } from '../retry.js';
import { type HubResponse, rangeStart } from './client.js';
import { fileHasher } from './hasher.js';

export const PARTIAL_SUFFIX = '.incomplete';

/** A file to download: where it lands, and what the Hub's listing says it is. */
export interface HubDownload {
  /** Where the verified file lands; its bytes gather in `PATH.incomplete` until then. */
  path: string;
  size: number;
  /** LFS files: the sha256 of the content (checked when given). */
  sha256?: string;
  /** The git blob id (sha1 of `blob SIZE\0` + content), checked when there is no sha256. */
  gitOid?: string;
  /** Names the file in errors (`hf://datasets/...`, `local:hf:...`). */
  where: string;
}

export interface DownloadOptions {
  /** GETs the file from byte `offset` (a Range request past 0); throws for refusals, which are final. */
  open: (offset: number) => Promise<HubResponse>;
  /** Tries in all, each resuming where the last stopped (default: DOWNLOAD_RETRY_POLICY in lib/retry.ts). */
  attempts?: number;
  /** `received`: bytes that just arrived (0 as a try starts); `onDisk`: the partial file's length now. */
  onBytes?: (received: number, onDisk: number) => void;
  /** Stops the retries (the caller's `open` passes it to its requests). */
  signal?: AbortSignal;
}

/** Skipped: complete on disk already; resumed: bytes of an earlier try or run were kept. */
export type DownloadOutcome = 'downloaded' | 'resumed' | 'skipped';

/** Lands the file at `file.path`, verified; a file of the listed size already there is taken as complete. */
export async function downloadHubFile(file: HubDownload, options: DownloadOptions): Promise<DownloadOutcome> {
  const [existing] = await Promise.all([
    fs.stat(file.path).catch(() => undefined),
    fs.mkdir(path.dirname(file.path), { recursive: true }),
  ]);
  if (existing?.isFile() && existing.size === file.size) return 'skipped';
  const partial = file.path + PARTIAL_SUFFIX;
  return withRetry(
    async () => {
      const resumed = await transfer(file, partial, options);
      await verify(file, partial);
      await fs.rename(partial, file.path); // atomic: a complete path is always a complete, verified file
      return resumed ? 'resumed' : 'downloaded';
    },
    {
      policy: retryPolicy(DOWNLOAD_RETRY_POLICY, { attempts: options.attempts }),
      signal: options.signal,
      classify: retryCause,
    },
  );
}

/**
 * Appends the rest of the file to `partial` from its length (or rewrites it if the server sends the file whole);
 * resolves to whether earlier bytes were kept.
 */
async function transfer(file: HubDownload, partial: string, options: DownloadOptions): Promise<boolean> {
  const offset = await usableOffset(partial, file.size);
  if (offset === file.size && offset > 0) {
    options.onBytes?.(0, offset);
    return true;
  }
  const response = await options.open(offset);
  const resumed = offset > 0 && response.status === 206;
  if (resumed && rangeStart(response) !== offset) {
    await response.body.dump();
    await fs.rm(partial, { force: true });
    throw new MegadocsError(
      'CORRUPT',
      `the server answered a range request from byte ${offset} with other bytes`,
      {
        where: file.where,
        hint: 'HF_ENDPOINT must point at a Hub (or mirror) that supports HTTP Range requests',
      },
    );
  }
  let onDisk = resumed ? offset : 0;
  options.onBytes?.(0, onDisk);
  await appendBody(response.body, partial, resumed, (count) => {
    onDisk += count;
    options.onBytes?.(count, onDisk);
  });
  return resumed;
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
 * files or the git blob sha1 of others, hashed on the hashing thread. A damaged file is deleted.
 */
async function verify(file: HubDownload, partial: string): Promise<void> {
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
  await fs.rm(partial, { force: true });
  throw new MegadocsError('CORRUPT', `the download is damaged: ${problem}`, {
    where: file.where,
    hint: 'Run the command again (the damaged part was deleted); if it persists, the file changed on the Hub: pin a revision',
  });
}

/** Broken transfers and damaged downloads are worth another try; refusals (401, 404...) and disk errors are not. */
function retryCause(error: unknown): RetryCause | undefined {
  if (error instanceof MegadocsError) return error.code === 'CORRUPT' ? { reason: 'damaged' } : undefined;
  return /ENOSPC|EACCES|EROFS|EISDIR/.test(messageOf(error)) ? undefined : { reason: 'broken_transfer' };
}
