// Turns `--llm local:PATH.gguf` or `local:hf:ORG/REPO[@REV]/FILE.gguf` into a GGUF file on disk: Hub models are
// downloaded once (local-download.ts) into the Hugging Face cache and found there, with no network, next time.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MegadocsError, messageOf } from '../errors.js';
import type { HubOptions } from '../hub/client.js';
import type { HubModelFile } from './local-download.js';

export const LOCAL_PREFIX = 'local:';
const HUB_PREFIX = 'hf:';

export type LocalModelSource = { kind: 'file'; path: string } | ({ kind: 'hub' } & HubModelFile);

export interface ModelDownloadProgress {
  /** The spec being downloaded (`local:hf:...`). */
  model: string;
  /** Bytes on disk so far over all parts (resumed bytes included). */
  receivedBytes: number;
  totalBytes: number;
}

export interface ResolveModelOptions {
  /** HF_ENDPOINT / HF_TOKEN, read by the CLI. */
  hub?: HubOptions;
  /** The Hub cache folder (see hubCacheDir); required for `local:hf:` models. */
  cacheDir?: string;
  onProgress?: (progress: ModelDownloadProgress) => void;
  signal?: AbortSignal;
}

export interface ResolvedModel {
  /** The GGUF file to load (the first part of a split model). */
  path: string;
  /** The name generations record as their `model`. */
  name: string;
  /** Whether this call downloaded anything. */
  downloaded: boolean;
}

export function isLocalLlm(spec: string): boolean {
  return spec.startsWith(LOCAL_PREFIX);
}

/** Requests in flight for a `local:` model when --concurrency is not given (servers get `auto`): an in-process
 * model holds a context sequence (and its memory, ~50 MB each for a 0.5B model at 4096 tokens) per request. */
export const LOCAL_DEFAULT_CONCURRENCY = 4;

/** `local:PATH` or `local:hf:ORG/REPO[@REV]/FILE`; errors say which shapes are valid. */
export function parseLocalSpec(spec: string): LocalModelSource {
  const rest = spec.slice(LOCAL_PREFIX.length);
  const fail = (problem: string): never => {
    throw new MegadocsError('BAD_OPTION', problem, {
      where: `--llm ${spec}`,
      hint: 'Write local:PATH/TO/MODEL.gguf, or local:hf:ORG/REPO[@REVISION]/FILE.gguf to download it from the Hub',
    });
  };
  if (!isLocalLlm(spec) || !rest) fail('expected a GGUF file after local:');
  if (!rest.startsWith(HUB_PREFIX)) return { kind: 'file', path: rest };
  const [org, nameAndRevision, ...file] = rest.slice(HUB_PREFIX.length).split('/');
  const at = nameAndRevision?.indexOf('@') ?? -1;
  const name = at === -1 ? nameAndRevision : nameAndRevision!.slice(0, at);
  const revision = at === -1 ? 'main' : nameAndRevision!.slice(at + 1);
  if (!org || !name || file.length === 0 || file.some((part) => !part || part === '..')) {
    fail('a Hub model must be named as hf:ORG/REPO/FILE.gguf');
  }
  if (!revision) fail('the revision after @ is empty');
  if (!file.at(-1)!.toLowerCase().endsWith('.gguf')) fail('the file must be a .gguf model');
  return { kind: 'hub', repo: `${org}/${name}`, revision, file: file.join('/') };
}

/** What generations record as `model`: the file's name, or `ORG/REPO[@REV]/FILE` for a Hub model. */
export function localModelName(spec: string): string {
  const source = parseLocalSpec(spec);
  if (source.kind === 'file') return path.basename(source.path);
  const revision = source.revision === 'main' ? '' : `@${source.revision}`;
  return `${source.repo}${revision}/${source.file}`;
}

/** Where Hugging Face tools keep downloaded repos: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Record<string, string | undefined>, home: string): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const hfHome = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'huggingface');
  return path.join(hfHome, 'hub');
}

/** The GGUF file a spec names, downloading a Hub model first unless the cache already holds it. */
export async function resolveLocalModel(
  spec: string,
  options: ResolveModelOptions = {},
): Promise<ResolvedModel> {
  const source = parseLocalSpec(spec);
  const name = localModelName(spec);
  if (source.kind === 'file') return { path: await requireFile(source.path), name, downloaded: false };
  if (!options.cacheDir) throw new Error('resolveLocalModel: a cacheDir is needed for local:hf: models');
  // The download (and the Hub client library, a measurable part of start-up) is loaded for local:hf: only.
  const download = await import('./local-download.js');
  const storage = path.join(options.cacheDir, `models--${source.repo.replaceAll('/', '--')}`);
  const cached = await cachedSnapshot(storage, source, download);
  if (cached) return { path: cached, name, downloaded: false };
  const downloaded = await download.downloadHubModel(source, storage, {
    spec,
    hub: options.hub,
    signal: options.signal,
    onBytes: (receivedBytes, totalBytes) => options.onProgress?.({ model: spec, receivedBytes, totalBytes }),
  });
  return { path: downloaded, name, downloaded: true };
}

/** A local file that must exist and be a file; the error names it and says what to pass instead. */
async function requireFile(file: string): Promise<string> {
  const stats = await fs.stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new MegadocsError(
      'BAD_OPTION',
      `the model file cannot be read (${error.code ?? messageOf(error)})`,
      {
        where: file,
        hint: 'Check the path after local: (relative to the current directory), or use local:hf:ORG/REPO/FILE.gguf to download a model from the Hub',
      },
    );
  });
  if (!stats.isFile()) {
    throw new MegadocsError('BAD_OPTION', 'the model path is not a file', {
      where: file,
      hint: 'Name the .gguf file itself (the first part for a split model)',
    });
  }
  return file;
}

/** The model's path in the cache when its revision was downloaded before (no network needed then). */
async function cachedSnapshot(
  storage: string,
  source: HubModelFile,
  { cachedSnapshotDir, modelParts }: typeof import('./local-download.js'),
): Promise<string | undefined> {
  const snapshot = await cachedSnapshotDir(storage, source.revision);
  if (!snapshot) return undefined;
  const present = await Promise.all(
    modelParts(source.file).map((part) =>
      fs.stat(path.join(snapshot, part)).then(
        (stats) => stats.isFile(),
        () => false,
      ),
    ),
  );
  return present.every(Boolean) ? path.join(snapshot, source.file) : undefined;
}
