// Mirrors Hub files to disk with the repo's layout: bounded parallelism, each file through the one downloader
// (download.ts: resume, size + LFS sha256 / git oid checks, atomic landing), complete files skipped.
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import { MegadocsError } from '../errors.js';
import type { HubClient } from './client.js';
import { type DownloadOutcome, downloadHubFile } from './download.js';
import type { HubFile } from './files.js';
import { fileHasher } from './hasher.js';
import { fetchHubFile, hubFileName } from './shard.js';

export { PARTIAL_SUFFIX } from './download.js';

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

export type PullOutcome = DownloadOutcome;

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
  fileHasher(); // boots the hashing thread now, beside the first downloads
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < files.length && !signal.aborted) {
      const file = files[next++];
      const outcome = await downloadHubFile(
        {
          path: destination(dir, file),
          size: file.size,
          sha256: file.sha256,
          gitOid: file.gitOid,
          where: hubFileName(file),
        },
        {
          open: (offset) => fetchHubFile(client, file, offset, undefined, { asIs: true, signal }),
          attempts: options.attempts,
          onBytes: (received) => {
            if (received === 0) return;
            summary.bytes += received;
            options.onProgress?.({ bytes: received });
          },
          signal,
        },
      );
      summary[outcome] += 1;
      options.onProgress?.({ bytes: 0, finished: { file, outcome } });
    }
  };
  // The first failure stops the other files; theirs (aborted transfers) are not the one to report.
  await Promise.all(
    Array.from({ length: concurrency }, () =>
      worker().catch((error: unknown) => {
        failure ??= { error };
        stop.abort();
      }),
    ),
  );
  if (failure) throw failure.error;
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
