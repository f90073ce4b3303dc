// Downloads a GGUF model file (all parts of a split model) from the Hub into the Hugging Face cache layout:
// models--ORG--REPO/{blobs/ID, snapshots/COMMIT/FILE -> blob, refs/REV}; each blob by the Hub downloader.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HubApiError, listFiles } from '@huggingface/hub';
import { MegadocsError, messageOf } from '../errors.js';
import { createHubClient, type HubClient, type HubOptions, rangeHeaders } from '../hub/client.js';
import { downloadHubFile } from '../hub/download.js';

/** A full commit id: a revision that never moves. */
export const COMMIT = /^[0-9a-f]{40}$/;
/** `NAME-00001-of-00003.gguf`: one part of a model split over several files (all are needed). */
const SPLIT_PART = /^(.*)-\d{5}-of-(\d{5})\.gguf$/;

/** A model file on the Hub (`local:hf:ORG/REPO[@REVISION]/FILE`). */
export interface HubModelFile {
  repo: string;
  revision: string;
  file: string;
}

export interface DownloadOptions {
  /** Named in errors (`local:hf:...`). */
  spec: string;
  hub?: HubOptions;
  /** Bytes on disk so far over all parts (resumed bytes included), and their total. */
  onBytes?: (receivedBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

/** The snapshot folder of `revision` in a repository's cache folder, when it was downloaded before (no network). */
export async function cachedSnapshotDir(storage: string, revision: string): Promise<string | undefined> {
  const commit = COMMIT.test(revision)
    ? revision
    : (await fs.readFile(path.join(storage, 'refs', revision), 'utf8').catch(() => '')).trim();
  return commit ? path.join(storage, 'snapshots', commit) : undefined;
}

/** The files a model file needs: itself, or every part of its split. */
export function modelParts(file: string): string[] {
  const split = SPLIT_PART.exec(path.basename(file));
  if (!split) return [file];
  const folder = path.posix.dirname(file);
  return Array.from({ length: Number(split[2]) }, (_v, index) => {
    const name = `${split[1]}-${String(index + 1).padStart(5, '0')}-of-${split[2]}.gguf`;
    return folder === '.' ? name : `${folder}/${name}`;
  });
}

/** Downloads the model's parts into `storage` (the repo's cache folder); resolves to the model's snapshot path. */
export async function downloadHubModel(
  source: HubModelFile,
  storage: string,
  options: DownloadOptions,
): Promise<string> {
  const client = createHubClient(options.hub);
  const context = {
    spec: options.spec,
    repo: source.repo,
    endpoint: client.endpoint,
    hasToken: client.hasToken,
  };
  const commit = await resolveCommit(client, source, context);
  const parts = await listParts(client, source, commit, context);
  const snapshot = path.join(storage, 'snapshots', commit);
  const totalBytes = parts.reduce((sum, part) => sum + part.size, 0);
  let doneBytes = 0;
  for (const part of parts) {
    const blob = path.join(storage, 'blobs', part.sha256 ?? part.oid);
    const partBase = doneBytes;
    await downloadBlob(client, source.repo, commit, part, blob, context, options.signal, (received) =>
      options.onBytes?.(partBase + received, totalBytes),
    );
    doneBytes += part.size;
    await linkIntoSnapshot(blob, path.join(snapshot, part.path));
  }
  if (!COMMIT.test(source.revision)) {
    await fs.mkdir(path.join(storage, 'refs', path.dirname(source.revision)), { recursive: true });
    await fs.writeFile(path.join(storage, 'refs', source.revision), commit);
  }
  return path.join(snapshot, source.file);
}

interface ErrorContext {
  spec: string;
  repo: string;
  endpoint: string;
  hasToken: boolean;
}

/** A refused Hub request about a model, with what to do (token, terms, name, revision). */
function refusal(
  status: number,
  code: string | undefined,
  said: string,
  context: ErrorContext,
): MegadocsError {
  const page = `${context.endpoint}/${context.repo}`;
  const server = said ? ` (the Hub said: ${said.trim().slice(0, 300)})` : '';
  if (code === 'GatedRepo' || status === 401 || status === 403) {
    return new MegadocsError(
      'HUB',
      `the model ${context.repo} is gated, private or missing (${status})${server}`,
      {
        where: context.spec,
        hint: context.hasToken
          ? `Accept the model's terms at ${page} with the account whose token is in HF_TOKEN, and check the name`
          : `Set HF_TOKEN to a read token (https://huggingface.co/settings/tokens); gated models need their terms accepted at ${page}`,
      },
    );
  }
  if (status === 404 && code === 'RepoNotFound') {
    return new MegadocsError('HUB', `the model ${context.repo} does not exist${server}`, {
      where: context.spec,
      hint: `Check the name at ${context.endpoint}/models?search=${encodeURIComponent(context.repo)}`,
    });
  }
  return new MegadocsError('HUB', `the Hub answered ${status}${server}`, {
    where: context.spec,
    hint:
      status >= 500 || status === 429
        ? 'The Hub is unavailable or rate-limiting even after retries; run the command again later'
        : 'Check the model name, the revision and HF_ENDPOINT',
  });
}

function unreachable(error: unknown, context: ErrorContext): MegadocsError {
  if (error instanceof MegadocsError) return error;
  if (error instanceof HubApiError) return refusal(error.statusCode, undefined, error.message, context);
  const cause = (error as { cause?: unknown })?.cause;
  return new MegadocsError(
    'HUB',
    `could not reach the Hub at ${context.endpoint} (${messageOf(cause ?? error)})`,
    {
      where: context.spec,
      hint: 'Check the network and HF_ENDPOINT; once downloaded, a model is used from the cache with no network',
      cause: error,
    },
  );
}

async function getJson(client: HubClient, url: string, context: ErrorContext): Promise<unknown> {
  const response = await client.request(url).catch((error: unknown) => {
    throw unreachable(error, context);
  });
  const text = await response.body.text();
  if (response.status !== 200) {
    const code = response.headers['x-error-code'];
    throw refusal(response.status, typeof code === 'string' ? code : undefined, text, context);
  }
  return JSON.parse(text);
}

/** The commit a branch or tag points at (the snapshot folder's name); a full commit id is taken as is. */
async function resolveCommit(
  client: HubClient,
  source: HubModelFile,
  context: ErrorContext,
): Promise<string> {
  if (COMMIT.test(source.revision)) return source.revision;
  type Ref = { name: string; ref: string; targetCommit: string };
  const refs = (await getJson(client, `${client.endpoint}/api/models/${source.repo}/refs`, context)) as {
    branches?: Ref[];
    tags?: Ref[];
  };
  const all = [...(refs.branches ?? []), ...(refs.tags ?? [])];
  const found = all.find((ref) => ref.name === source.revision || ref.ref === source.revision);
  if (found) return found.targetCommit;
  throw new MegadocsError('HUB', `the model ${source.repo} has no revision "${source.revision}"`, {
    where: context.spec,
    hint: `Branches and tags: ${all.map((ref) => ref.name).join(', ') || 'none'}; or pin a 40-character commit id`,
  });
}

interface ModelPart {
  path: string;
  size: number;
  /** Content sha256 (LFS files). */
  sha256?: string;
  /** Git blob id (sha1 of `blob SIZE\0` + content). */
  oid: string;
}

/** The named file (and, for a split model, all its parts) as listed at the commit. */
async function listParts(
  client: HubClient,
  source: HubModelFile,
  commit: string,
  context: ErrorContext,
): Promise<ModelPart[]> {
  const folder = source.file.includes('/') ? source.file.slice(0, source.file.lastIndexOf('/')) : '';
  const listed: ModelPart[] = [];
  try {
    for await (const entry of listFiles({
      repo: { type: 'model', name: source.repo },
      revision: commit,
      path: folder,
      hubUrl: client.endpoint,
      fetch: client.fetch,
    })) {
      // Every file the Hub lists has a git oid; it names the blob and checks the bytes.
      if (entry.type === 'file' && entry.oid)
        listed.push({ path: entry.path, size: entry.size, sha256: entry.lfs?.oid, oid: entry.oid });
    }
  } catch (error) {
    throw unreachable(error, context);
  }
  const needed = new Set(modelParts(source.file));
  const wanted = listed.filter((entry) => needed.has(entry.path));
  if (wanted.length !== needed.size) {
    const models = listed.filter((entry) => entry.path.endsWith('.gguf')).map((entry) => entry.path);
    throw new MegadocsError(
      'HUB',
      `the model ${source.repo} has no file "${source.file}" at ${source.revision}`,
      {
        where: context.spec,
        hint: models.length
          ? `GGUF files there: ${models.slice(0, 12).join(', ')}`
          : 'That folder holds no .gguf file',
      },
    );
  }
  return wanted;
}

/** Downloads one part into `blob` (skipped when present), resuming a `.incomplete` file, checking size and hash. */
async function downloadBlob(
  client: HubClient,
  repo: string,
  commit: string,
  part: ModelPart,
  blob: string,
  context: ErrorContext,
  signal: AbortSignal | undefined,
  onBytes: (received: number) => void,
): Promise<void> {
  const url = `${client.endpoint}/${repo}/resolve/${commit}/${part.path.split('/').map(encodeURIComponent).join('/')}`;
  const open = async (offset: number) => {
    const response = await client.request(url, { headers: rangeHeaders(offset), signal });
    if (response.status === 200 || response.status === 206) return response;
    const code = response.headers['x-error-code'];
    const said = await response.body.text();
    throw refusal(response.status, typeof code === 'string' ? code : undefined, said, context);
  };
  const outcome = await downloadHubFile(
    { path: blob, size: part.size, sha256: part.sha256, gitOid: part.oid, where: context.spec },
    { open, signal, onBytes: (_received, onDisk) => onBytes(onDisk) },
  ).catch((error: unknown) => {
    throw unreachable(error, context);
  });
  if (outcome === 'skipped') onBytes(part.size);
}

/** `snapshots/COMMIT/FILE` -> `../../blobs/ID` as Hugging Face tools do; a copy where symlinks are not allowed. */
async function linkIntoSnapshot(blob: string, pointer: string): Promise<void> {
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  await fs.rm(pointer, { force: true });
  try {
    await fs.symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    await fs.copyFile(blob, pointer);
  }
}
