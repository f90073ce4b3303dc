// `--tokenizer hf:ORG/REPO[@REV]`: a Hub model's tokenizer.json and tokenizer_config.json, downloaded once (by
// the model downloader, lib/backends/local-download.ts) into the Hugging Face cache and found there, offline, next time.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MegadocsError } from '../errors.js';
import type { HubOptions } from './client.js';

export const HF_TOKENIZER_PREFIX = 'hf:';
const TOKENIZER_FILE = 'tokenizer.json';
/** Needed for BOS/EOS; a repository without one still gives a tokenizer (EOS then comes from --eos-token). */
const CONFIG_FILE = 'tokenizer_config.json';
const REPO_NAME = /^[\w.-]+\/[\w.-]+$/;

export interface HubTokenizer {
  repo: string;
  revision: string;
}

/** `hf:ORG/REPO[@REV]` (REV: a branch, a tag or a commit; default main); throws a BAD_OPTION error otherwise. */
export function parseHubTokenizerSpec(spec: string): HubTokenizer {
  const rest = spec.slice(HF_TOKENIZER_PREFIX.length);
  const at = rest.indexOf('@');
  const repo = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? 'main' : rest.slice(at + 1);
  if (!REPO_NAME.test(repo) || revision === '') {
    throw new MegadocsError('BAD_OPTION', `not a Hub tokenizer: ${JSON.stringify(spec)}`, {
      where: 'tokenizer',
      hint: 'Write hf:ORG/REPO or hf:ORG/REPO@REVISION, e.g. hf:Qwen/Qwen2.5-0.5B',
    });
  }
  return { repo, revision };
}

/** Where `hf:` tokenizers come from; the CLI reads them from the environment (bin/environment.ts). */
export interface TokenizerDownloadOptions {
  /** The Hub's endpoint and token (the CLI: HF_ENDPOINT, HF_TOKEN). */
  hub: HubOptions;
  /** The Hugging Face hub cache (the CLI: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir: string;
}

/** The snapshot directory of the revision when the cache holds its tokenizer.json already. */
async function cachedSnapshot(
  storage: string,
  source: HubTokenizer,
  cachedSnapshotDir: (storage: string, revision: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  const snapshot = await cachedSnapshotDir(storage, source.revision);
  if (!snapshot) return undefined;
  return (await fs.stat(path.join(snapshot, TOKENIZER_FILE)).catch(() => undefined))?.isFile()
    ? snapshot
    : undefined;
}

const resolving = new Map<string, Promise<string>>();
/** The last resolution of each spec in this thread, for the steps after the first that read the files. */
const resolvedSpecs = new Map<string, Promise<string>>();

/**
 * The local directory holding the tokenizer files of `spec` (downloaded first unless cached); one download per
 * process. Without `options`, the directory this thread resolved `spec` to before (the command's first step
 * passes them), else an error saying to pass them.
 */
export function resolveHubTokenizer(spec: string, options?: TokenizerDownloadOptions): Promise<string> {
  if (!options) {
    return (
      resolvedSpecs.get(spec) ??
      Promise.reject(
        new MegadocsError(
          'TOKENIZER',
          `the Hub tokenizer ${spec} was not downloaded: no Hub options were given`,
          {
            where: spec,
            hint: 'Library callers: pass hubTokenizer { hub, cacheDir } (runPack, runMegadocs, runGenerate, inspectDataset) or the third argument of loadEncoder; the CLI reads HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE and HF_HOME',
          },
        ),
      )
    );
  }
  const key = `${options.cacheDir}\0${spec}`;
  let resolved = resolving.get(key);
  if (!resolved) {
    resolved = downloadTokenizer(spec, options.cacheDir, options.hub);
    resolving.set(key, resolved);
    resolved.catch(() => resolving.delete(key));
  }
  resolvedSpecs.set(spec, resolved);
  return resolved;
}

async function downloadTokenizer(spec: string, cacheDir: string, hub: HubOptions): Promise<string> {
  const source = parseHubTokenizerSpec(spec);
  // The model downloader (and the Hub client library, a measurable part of start-up) is loaded for hf: only.
  const { cachedSnapshotDir, downloadHubModel } = await import('../backends/local-download.js');
  const storage = path.join(cacheDir, `models--${source.repo.replaceAll('/', '--')}`);
  const cached = await cachedSnapshot(storage, source, cachedSnapshotDir);
  if (cached) return cached;
  const download = (revision: string, file: string) =>
    downloadHubModel({ repo: source.repo, revision, file }, storage, { spec, hub });
  let tokenizerFile: string;
  try {
    tokenizerFile = await download(source.revision, TOKENIZER_FILE);
  } catch (error) {
    throw noFileError(error, spec, source) ?? error;
  }
  const snapshot = path.dirname(tokenizerFile);
  // The snapshot's folder is the commit: the config comes from the same one.
  await download(path.basename(snapshot), CONFIG_FILE).catch((error: unknown) => {
    if (!noFileError(error, spec, source)) throw error;
  });
  return snapshot;
}

/** The model downloader's "no such file" error, said for a tokenizer; undefined for any other error. */
function noFileError(error: unknown, spec: string, source: HubTokenizer): MegadocsError | undefined {
  if (!(error instanceof MegadocsError) || !/ has no file "/.test(error.message)) return undefined;
  return new MegadocsError(
    'TOKENIZER',
    `the model ${source.repo} has no ${TOKENIZER_FILE} at ${source.revision}`,
    {
      where: spec,
      hint: 'Name a model repository with a Hugging Face fast tokenizer (tokenizer.json), or pass --tokenizer PATH',
    },
  );
}
