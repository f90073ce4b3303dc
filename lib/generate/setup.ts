// What `generate` and `run` both do before generating: open the backend named by --llm (OpenAI-compatible
// servers or an in-process `local:` model) and fingerprint the recipe and template files for the run identity.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { LlmBackend } from '../backends/backend.js';
import type { ApiKind } from '../backends/client.js';
import { HttpBackend } from '../backends/http-backend.js';
import { createLocalBackend, type LocalRunOptions } from '../backends/local-backend.js';
import { isLocalLlm, LOCAL_DEFAULT_CONCURRENCY } from '../backends/local-model.js';
import { MegadocsError, messageOf } from '../errors.js';
import { DEFAULT_RETRY_POLICY } from '../retry.js';
import type { GenerateStats } from './stats.js';

export interface BackendSettings {
  llm: string[];
  api: ApiKind;
  /** The model requests name; for servers, undefined asks them (GET /v1/models). */
  model?: string;
  apiKey?: string;
  /** `auto` for servers (a `local:` model's is a number: parseGenerateConfig and parseRunConfig see to it). */
  concurrency: number | 'auto';
  maxConcurrency?: number;
  rpm?: number;
  tpm?: number;
  timeoutSeconds: number;
  maxRetries: number;
  /** Seconds requests wait for a server while none answers (`--wait-for-server`); a `local:` model never waits. */
  waitForServer: number;
  threads?: number;
  /** `--context-size`: the local model's context, and the budget's (a server's own is what it serves). */
  contextSize?: number;
  stats: GenerateStats;
  signal?: AbortSignal;
  local?: LocalRunOptions;
  onWarning?: (message: string) => void;
}

/**
 * The OpenAI-compatible servers of --llm (asked what they serve first), or the one `local:` model run in this
 * process; the stats name the served model and its context size.
 */
export async function openBackend(settings: BackendSettings): Promise<LlmBackend> {
  const backend = await backendFor(settings);
  settings.stats.model = backend.model;
  const contextSize = settings.contextSize ?? backend.contextSize;
  if (contextSize !== undefined) settings.stats.contextSize = contextSize;
  return backend;
}

async function backendFor(settings: BackendSettings): Promise<LlmBackend> {
  if (isLocalLlm(settings.llm[0]!)) {
    return createLocalBackend({
      spec: settings.llm[0]!,
      concurrency: settings.concurrency === 'auto' ? LOCAL_DEFAULT_CONCURRENCY : settings.concurrency,
      format: settings.api === 'chat' ? 'chat' : 'text',
      threads: settings.threads,
      contextSize: settings.contextSize,
      stats: settings.stats,
      signal: settings.signal,
      ...settings.local,
    });
  }
  const backend = new HttpBackend({
    urls: settings.llm,
    api: settings.api,
    model: settings.model,
    apiKey: settings.apiKey,
    concurrency: settings.concurrency,
    maxConcurrency: settings.maxConcurrency,
    rateLimits: { rpm: settings.rpm, tpm: settings.tpm },
    timeoutMs: settings.timeoutSeconds * 1000,
    retry: { ...DEFAULT_RETRY_POLICY, maxRetries: settings.maxRetries },
    serverWait: { waitMs: settings.waitForServer * 1000 },
    stats: settings.stats,
    onWarning: settings.onWarning,
  });
  try {
    await backend.discover(settings.signal);
  } catch (error) {
    await backend.close();
    throw error;
  }
  return backend;
}

async function fileHash(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  } catch (error) {
    throw new MegadocsError('BAD_CONFIG', `cannot read ${path} (${messageOf(error)})`, { where: path });
  }
}

/** sha256 of a custom recipe file and a templates file: editing either changes what a run generates. */
export async function recipeFilesIdentity(
  recipe: string,
  templates: string | undefined,
): Promise<{ recipeFile?: string; templatesFile?: string }> {
  const recipeFile = recipe.toLowerCase().endsWith('.json') ? await fileHash(recipe) : undefined;
  return { recipeFile, templatesFile: await fileHash(templates) };
}
