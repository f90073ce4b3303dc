// `megadocs run` as a library call: source -> generate -> assemble -> tokenize -> pack (per stream, parked
// on disk) -> mix and shuffle -> MDS sink, in one process and one run directory that a rerun continues.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { rejectOnAbort } from '../abort.js';
import { assembleStage } from '../assemble/index.js';
import { prewarmZstdCompression } from '../codecs/zstd.js';
import type { RunConfig } from '../config.js';
import type { LlmBackend } from '../generate/backend.js';
import { defaultWindow, generateStage } from '../generate/engine.js';
import { Journal } from '../generate/journal.js';
import type { LocalRunOptions } from '../generate/local-backend.js';
import { recipeNeedsTokenizer, resolveRecipe } from '../generate/recipes/index.js';
import { openBackend, recipeFilesIdentity } from '../generate/setup.js';
import { statsSnapshot } from '../generate/stats.js';
import { loadTemplates } from '../generate/templates/index.js';
import type { HubPusher } from '../hub/push.js';
import type { HubInputOptions } from '../hub/shard.js';
import { STREAM_NAMES, type StreamName } from '../mix.js';
import { planShards } from '../plan.js';
import { hashConfig, RunDir } from '../rundir.js';
import { expandInputs, inputIdentity, knownInputBytes } from '../sources/inputs.js';
import { readDocs } from '../sources/read.js';
import type { SequenceSpillReader } from '../spill.js';
import { type Encoder, loadEncoder, type TokenizerFacts, tokenizerFacts } from '../tokenize/encoders.js';
import { rankOutput } from './pack.js';
import { packToSpills } from './run-spill.js';
import {
  newRunProgress,
  type RunProgress,
  type RunSummary,
  summarize,
  type WrittenOutput,
} from './run-stats.js';
import { MIXTURE_FILE, writeOutput } from './run-write.js';

export { newRunProgress, type RunProgress, type RunSummary } from './run-stats.js';

/** Packed sequences wait here (OUT/spill/) until both streams are complete; removed when the run ends. */
export const SPILL_DIR = 'spill';

export interface RunOptions {
  /** Read from the environment by the caller; sent as a bearer token, never stored. */
  apiKey?: string;
  progress?: RunProgress;
  /** Aborting stops the requests in flight and marks the run interrupted; a rerun continues it. */
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** How `hf://` inputs reach the Hub (a client from HF_ENDPOINT/HF_TOKEN, built by the caller). */
  hub?: HubInputOptions;
  /** What a `local:` model needs from the caller: Hub access and cache for downloads, what to show. */
  local?: LocalRunOptions;
  /** Uploads each finished shard, then the index (or mixture.json), to a Hub dataset while the run goes on. */
  pusher?: HubPusher;
}

/** The options that decide the output bytes: not the servers, key, concurrency, retries, timeouts, workers. */
async function outputIdentity(config: RunConfig): Promise<Record<string, unknown>> {
  const {
    llm: _llm,
    apiKeyEnv: _apiKeyEnv,
    concurrency: _concurrency,
    maxRetries: _maxRetries,
    timeout: _timeout,
    threads: _threads,
    workers: _workers,
    overwrite: _overwrite,
    out: _out,
    ...identity
  } = config;
  return { ...identity, ...(await recipeFilesIdentity(config.recipe, config.templates)) };
}

/**
 * The tokenizer's vocabulary size and EOS id, and the encoder itself only when the recipe or the input cut
 * needs it in this thread: otherwise its tables (~60 MB) live in the tokenizer workers alone.
 */
async function tokenizerFor(
  config: RunConfig,
  recipeNeedsIt: boolean,
): Promise<{ tokenizer: TokenizerFacts; codec?: Encoder }> {
  if (!recipeNeedsIt && config.maxInputTokens === undefined)
    return { tokenizer: await tokenizerFacts(config.tokenizer) };
  const codec = await loadEncoder(config.tokenizer);
  return { tokenizer: codec, codec };
}

export async function runMegadocs(config: RunConfig, run: RunOptions = {}): Promise<RunSummary> {
  const progress = run.progress ?? newRunProgress();
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
  const { tokenizer, codec } = await tokenizerFor(config, recipeNeedsTokenizer(recipe));
  const allShards = await expandInputs(config.inputs, { hub: run.hub });
  const rank = { rank: config.rank ?? 0, worldSize: config.worldSize ?? 1 };
  const shards = rank.worldSize > 1 ? planShards(allShards, rank) : allShards;
  const out = rankOutput(config.out, rank);
  progress.inputBytes = knownInputBytes(shards);
  const identity = { ...(await outputIdentity(config)), inputFiles: inputIdentity(shards) };
  const runDir = await RunDir.open({
    dir: out,
    command: 'run',
    options: { ...config },
    identity,
    overwrite: config.overwrite,
  });
  let backend: LlmBackend | undefined;
  const spillDir = join(out, SPILL_DIR);
  let journal: Journal | undefined;
  const spills: Partial<Record<StreamName, SequenceSpillReader>> = {};
  try {
    backend = await openBackend({
      ...config,
      timeoutSeconds: config.timeout,
      apiKey: run.apiKey,
      stats: progress.generate,
      signal: run.signal,
      local: run.local,
      onWarning: run.onWarning,
    });
    journal = await Journal.open({
      stateDir: runDir.stateDir,
      configHash: hashConfig(identity),
      window: defaultWindow(config.concurrency),
      onWarning: run.onWarning,
    });
    const megadocs = readDocs(shards, {
      textField: config.textField,
      idField: config.idField,
      onError: config.onError,
      stats: progress.source,
    })
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
          stats: progress.generate,
          signal: run.signal,
        }),
      )
      .through(
        assembleStage({
          mode: config.assemble,
          original: config.original,
          separator: config.separator,
          join: config.join,
          thoughtOpen: config.thoughtOpen,
          thoughtClose: config.thoughtClose,
          minGenerations: config.minGenerations,
          shuffleWindow: config.shuffleWindow,
          seed: config.shuffleSeed,
          stats: progress.assemble,
        }),
      );
    await mkdir(spillDir, { recursive: true });
    // The shards are compressed only in the writing phase: the compressor starts while the chain streams.
    if (config.compression !== 'none') prewarmZstdCompression();
    const streamSeconds = await timed(async () => {
      Object.assign(
        spills,
        await Promise.race([
          packToSpills(megadocs, config, tokenizer, spillDir, progress),
          rejectOnAbort(run.signal),
        ]),
      );
    });
    const complete = spills as Record<StreamName, SequenceSpillReader>;
    let written: WrittenOutput | undefined;
    const writeSeconds = await timed(async () => {
      written = await Promise.race([
        writeOutput(complete, config, out, tokenizer, progress, (file) => run.pusher?.addShard(file)),
        rejectOnAbort(run.signal),
      ]);
    });
    await Promise.all(STREAM_NAMES.map((stream) => complete[stream].close()));
    await rm(spillDir, { recursive: true, force: true });
    const summary = summarize(progress, config, written!, { streamSeconds, writeSeconds });
    await runDir.complete(summary);
    await run.pusher?.finish(join(out, config.streams === 'separate' ? MIXTURE_FILE : 'index.json'));
    return summary;
  } catch (error) {
    await runDir.stop(run.signal?.aborted ? 'interrupted' : 'failed', error, {
      generate: statsSnapshot(progress.generate),
      assemble: progress.assemble,
    });
    throw error;
  } finally {
    await Promise.allSettled(Object.values(spills).map((spill) => spill.close()));
    await journal?.close();
    await backend?.close();
  }
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}
