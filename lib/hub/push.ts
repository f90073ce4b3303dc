// Uploads a run's finished shards to a Hub dataset while the run goes on: batched commits in the background
// (plain HTTP LFS, no xet), retried on 412/429/5xx; the index goes in the last commit, after its shards.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type CommitParams, commit, createRepo, HubApiError } from '@huggingface/hub';
import { MegadocsError, messageOf } from '../errors.js';
import { HUB_RETRY_POLICY, retryPolicy, withRetry } from '../retry.js';
import type { HubClient } from './client.js';
import { formatHubUrl, type HubLocation } from './url.js';

export interface PushOptions {
  client: HubClient;
  /** `hf://datasets/ME/NAME[@BRANCH][/FOLDER]`, parsed: files go to FOLDER/RELATIVE-PATH on BRANCH. */
  target: HubLocation;
  /** Local folder that pushed paths are relative to (the run's output directory). */
  root: string;
  /** Commit as soon as this many files wait (default 16)... */
  batchFiles?: number;
  /** ...or once the oldest waiting file has waited this long (default 30 s). */
  batchDelayMs?: number;
  /** Tries per commit on 412, 429 and 5xx answers (default 8). */
  attempts?: number;
  /** Backoff base between commit tries (default 500 ms, doubling). */
  retryDelayMs?: number;
  /** Create the dataset (private) when it does not exist yet (default true). */
  create?: boolean;
  onCommit?: (event: { files: string[]; commit: string }) => void;
}

export interface PushSummary {
  commits: number;
  files: number;
}

const RETRY_COMMIT = new Set([412, 429, 500, 502, 503, 504]);

/** Batches files into commits in the background; `finish` pushes what is left plus the index. */
export class HubPusher {
  private readonly waiting: string[] = [];
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private failure?: unknown;
  private created = false;
  private readonly summary: PushSummary = { commits: 0, files: 0 };

  constructor(private readonly options: PushOptions) {}

  /** Queues a finished file (absolute, or relative to `root`); throws if an earlier commit failed for good. */
  addShard(file: string): void {
    this.throwIfFailed();
    this.waiting.push(path.resolve(this.options.root, file));
    if (this.waiting.length >= (this.options.batchFiles ?? 16)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.options.batchDelayMs ?? 30_000).unref();
  }

  /** Waits for queued commits, then commits the remaining files with the index last. */
  async finish(indexPath: string): Promise<PushSummary> {
    this.waiting.push(path.resolve(this.options.root, indexPath));
    this.flush();
    await this.running;
    this.throwIfFailed();
    return { ...this.summary };
  }

  /** Starts a commit of everything waiting, after the one in flight (commits to a branch are serial). */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.length === 0) return;
    const files = this.waiting.splice(0);
    this.running = this.running.then(async () => {
      if (this.failure) return;
      try {
        await this.commitWithRetries(files);
      } catch (error) {
        this.failure = error;
      }
    });
  }

  private async commitWithRetries(files: string[]): Promise<void> {
    const { client, target } = this.options;
    await this.ensureRepo();
    const paths = files.map((file) => this.repoPath(file));
    const params = {
      repo: { type: 'dataset', name: target.repo },
      branch: target.revision,
      title: `megadocs: add ${paths.length === 1 ? paths[0] : `${paths.length} files`}`,
      operations: files.map((file, index) => ({
        operation: 'addOrUpdate',
        path: paths[index],
        content: pathToFileURL(file),
      })),
      hubUrl: client.endpoint,
      fetch: client.fetch,
      useXet: false,
    } as CommitParams;
    const policy = retryPolicy(HUB_RETRY_POLICY, {
      attempts: this.options.attempts,
      baseDelayMs: this.options.retryDelayMs,
    });
    const output = await withRetry(() => commit(params), {
      policy,
      classify: (error) =>
        error instanceof HubApiError && RETRY_COMMIT.has(error.statusCode)
          ? { reason: String(error.statusCode) }
          : undefined,
    }).catch((error: unknown) => {
      throw this.pushError(error, paths);
    });
    this.summary.commits += 1;
    this.summary.files += paths.length;
    this.options.onCommit?.({ files: paths, commit: output?.commit.oid ?? '' });
  }

  private async ensureRepo(): Promise<void> {
    if (this.created || this.options.create === false) return;
    const { client, target } = this.options;
    try {
      await createRepo({
        repo: { type: 'dataset', name: target.repo },
        visibility: 'private',
        hubUrl: client.endpoint,
        fetch: client.fetch,
      } as Parameters<typeof createRepo>[0]);
    } catch (error) {
      if (!(error instanceof HubApiError && error.statusCode === 409)) throw this.pushError(error, []);
    }
    this.created = true;
  }

  /** FOLDER/RELATIVE-PATH in the repo, with `/` separators. */
  private repoPath(file: string): string {
    const relative = path.relative(this.options.root, file);
    if (relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new MegadocsError('BAD_OPTION', `${file} is outside the pushed folder ${this.options.root}`, {
        where: formatHubUrl(this.options.target, this.options.target.path),
        hint: 'Only files inside the output directory can be pushed',
      });
    }
    const folder = this.options.target.path.replace(/\/+$/, '');
    return [folder, relative.split(path.sep).join('/')].filter(Boolean).join('/');
  }

  private pushError(error: unknown, paths: string[]): MegadocsError {
    if (error instanceof MegadocsError) return error;
    const what = paths.length
      ? ` (pushing ${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', ...' : ''})`
      : '';
    const status = error instanceof HubApiError ? error.statusCode : undefined;
    const said = status
      ? `the Hub answered ${status}: ${error instanceof Error ? error.message : ''}`
      : messageOf(error);
    return new MegadocsError('HUB', `push failed${what}: ${said}`, {
      where: formatHubUrl(this.options.target, this.options.target.path),
      hint:
        status === 401 || status === 403
          ? `Set HF_TOKEN to a token with write access to ${this.options.target.repo}`
          : 'Files already committed stay on the Hub; run the command again to push the rest',
      cause: error,
    });
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
