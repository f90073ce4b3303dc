// `megadocs generate` as a library call: source -> generate stage -> generation records -> jsonl.zst shards,
// inside a run directory whose state/ holds the journal, so a rerun after a crash pays for nothing twice.
import { rejectOnAbort } from '../abort.js';
import type { HubInputOptions } from '../hub/shard.js';
import { hashConfig, RunDir } from '../rundir.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { expandInputs, inputIdentity, knownInputBytes } from '../sources/inputs.js';
import { readDocs } from '../sources/read.js';
import type { RecordOptions, SourceStats } from '../sources/types.js';
import { loadEncoder } from '../tokenize/encoders.js';
import type { ApiKind } from './client.js';
import { defaultWindow, generateStage, generationRecord } from './engine.js';
import { Journal } from './journal.js';
import type { LocalRunOptions } from './local-backend.js';
import { recipeNeedsTokenizer, resolveRecipe } from './recipes/index.js';
import { openBackend, recipeFilesIdentity } from './setup.js';
import { createGenerateStats, type GenerateStats, statsSnapshot } from './stats.js';
import { loadTemplates } from './templates/index.js';

export interface GenerateConfig {
  inputs: string[];
  out: string;
  overwrite: boolean;
  record: RecordOptions;
  /** Base URLs of the servers, or one `local:` GGUF model run in-process (`--llm`). */
  llm: string[];
  /** CPU threads of a `local:` model (`--threads`); default: all cores but one, at most 8. */
  threads?: number;
  model: string;
  api: ApiKind;
  /** The name of the variable that holds the key (recorded; the key itself never is). */
  apiKeyEnv: string;
  recipe: string;
  generations?: number;
  styles?: string[];
  /** A `--templates` file. */
  templates?: string;
  nPerRequest: number;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  seed: number;
  concurrency: number;
  maxRetries: number;
  timeoutSeconds: number;
  onTruncated: 'keep' | 'drop';
  maxInputTokens?: number;
  tokenizer: string;
  jsonMode: boolean;
  compression: string;
  shardSize: number;
}

/** Live counters for the progress display. */
export interface GenerateProgress {
  source: SourceStats;
  generate: GenerateStats;
  /** Total input bytes when known (for the ETA). */
  inputBytes?: number;
  shards: number;
}

export interface GenerateRunOptions {
  /** The API key, read from the environment by the caller; sent as a bearer token, never stored. */
  apiKey?: string;
  progress?: GenerateProgress;
  signal?: AbortSignal;
  /** Warnings such as a torn journal line. */
  onWarning?: (message: string) => void;
  /** What a `local:` model needs from the caller: Hub access and cache for downloads, what to show. */
  local?: LocalRunOptions;
  /** How `hf://` inputs reach the Hub (a client from HF_ENDPOINT/HF_TOKEN, built by the caller). */
  hub?: HubInputOptions;
}

export type GenerateSummary = Record<string, unknown> & {
  documents: number;
  generations: number;
  shards: number;
};

export function newGenerateProgress(): GenerateProgress {
  return {
    source: { files: 0, documents: 0, bytes: 0, skipped: 0 },
    generate: createGenerateStats(),
    shards: 0,
  };
}

/** The options that decide the output: not the servers, the key, concurrency, retries or timeouts. */
async function outputIdentity(config: GenerateConfig): Promise<Record<string, unknown>> {
  const {
    llm: _llm,
    threads: _threads,
    apiKeyEnv: _apiKeyEnv,
    concurrency: _concurrency,
    maxRetries: _maxRetries,
    timeoutSeconds: _timeout,
    overwrite: _overwrite,
    out: _out,
    ...identity
  } = config;
  return { ...identity, ...(await recipeFilesIdentity(config.recipe, config.templates)) };
}

export async function runGenerate(
  config: GenerateConfig,
  run: GenerateRunOptions = {},
): Promise<GenerateSummary> {
  const progress = run.progress ?? newGenerateProgress();
  const stats = progress.generate;
  const templates = config.templates ? await loadTemplates(config.templates) : undefined;
  const recipe = await resolveRecipe({
    recipe: config.recipe,
    generations: config.generations,
    styles: config.styles,
    nPerRequest: config.nPerRequest,
    sampling: { temperature: config.temperature, topP: config.topP, maxTokens: config.maxTokens },
    templates,
    jsonMode: config.jsonMode,
  });
  const codec =
    recipeNeedsTokenizer(recipe) || config.maxInputTokens ? await loadEncoder(config.tokenizer) : undefined;
  const shards = await expandInputs(config.inputs, { hub: run.hub });
  progress.inputBytes = knownInputBytes(shards);
  const identity = { ...(await outputIdentity(config)), inputFiles: inputIdentity(shards) };
  const runDir = await RunDir.open({
    dir: config.out,
    command: 'generate',
    options: { ...config },
    identity,
    overwrite: config.overwrite,
  });
  const backend = await openBackend({
    ...config,
    apiKey: run.apiKey,
    stats,
    signal: run.signal,
    local: run.local,
    onWarning: run.onWarning,
  }).catch(async (error: unknown) => {
    await runDir.stop('failed', error, statsSnapshot(stats));
    throw error;
  });
  let journal: Journal | undefined;
  try {
    journal = await Journal.open({
      stateDir: runDir.stateDir,
      configHash: hashConfig(identity),
      window: defaultWindow(config.concurrency),
      onWarning: run.onWarning,
    });
    const records = readDocs(shards, { ...config.record, stats: progress.source })
      .through(
        generateStage({
          backend,
          recipe,
          model: config.model,
          seed: config.seed,
          onTruncated: config.onTruncated,
          maxInputTokens: config.maxInputTokens,
          codec,
          journal,
          stats,
          signal: run.signal,
        }),
      )
      .map((done) => done.generations.map(generationRecord))
      .sequence();
    const onShard = () => {
      progress.shards += 1;
    };
    const written = await Promise.race([
      jsonlSink({ dir: config.out, compression: config.compression, shardSize: config.shardSize, onShard })(
        records,
      ),
      rejectOnAbort(run.signal),
    ]);
    const summary: GenerateSummary = {
      ...statsSnapshot(stats),
      documents: stats.documents,
      generations: stats.generations,
      sourceFiles: progress.source.files,
      malformedRecords: progress.source.skipped,
      shards: written.shards,
      rawBytes: written.rawBytes,
      storedBytes: written.storedBytes,
    };
    await runDir.complete(summary);
    return summary;
  } catch (error) {
    await runDir.stop(run.signal?.aborted ? 'interrupted' : 'failed', error, statsSnapshot(stats));
    throw error;
  } finally {
    journal?.close();
    await backend.close();
  }
}
