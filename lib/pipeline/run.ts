// `megadocs run` as a library call: its named steps (source, generate, assemble, tokenize, then per stream
// pack (Megatron: whole megadocs), parked on disk; then mix, shuffle and the sink), users' transforms between
// them, on the executor.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assembleStage } from '../assemble/index.js';
import type { LocalRunOptions } from '../backends/local-backend.js';
import { prewarmZstdCompression } from '../codecs/zstd.js';
import type { RunConfig, RuntimeOptions } from '../config.js';
import { planAtStart } from '../cost-plan.js';
import { budgetFor } from '../generate/budget.js';
import { recipeNeedsTokenizer } from '../generate/recipes/index.js';
import { statsSnapshot } from '../generate/stats.js';
import type { HubSelection } from '../hub/files.js';
import type { HubPusher } from '../hub/push.js';
import type { HubInputOptions } from '../hub/shard.js';
import type { SequenceSpillReader } from '../sequence-spill.js';
import { DocumentSpans, recordSpans } from '../sinks/memmap-spans.js';
import { completionFile } from '../sinks/output-index.js';
import { tokenDtype } from '../sinks/token-dtype.js';
import { readDocs } from '../sources/read.js';
import { drain } from '../stream.js';
import { documentTokens } from '../tokenize/document-tokens.js';
import {
  type Encoder,
  loadEncoder,
  prepareTokenizer,
  type TokenizerFacts,
  tokenizerFacts,
} from '../tokenize/encoders.js';
import type { CacheDir } from '../tokenize/table-cache.js';
import { STREAM_NAMES, type StreamName } from '../types.js';
import { executeJob, type JobContext } from './executor.js';
import { generationIdentity, generationSteps, generatorTokenizerFor, recipeFor } from './generation.js';
import { megadocEntriesStep } from './run-megatron.js';
import { parkStreams, partsToTokenize } from './run-spill.js';
import { newRunProgress, type RunProgress, type RunSummary, summarize } from './run-stats.js';
import { MIXTURE_FILE, writeOutput } from './run-write.js';
import { type AnyStep, throughSteps } from './steps.js';
import { packStep, tokenizeStep } from './token-steps.js';
import { type TransformModule, type Transforms, transformSteps } from './transforms.js';

export { newRunProgress, type RunProgress, type RunSummary } from './run-stats.js';

/** Packed sequences wait here (OUT/spill/) until both streams are complete; removed when the run ends. */
export const SPILL_DIR = 'spill';

/** The insertion points of `megadocs run`: all four. */
export const RUN_POINTS = ['documents', 'generations', 'megadocs', 'sequences'] as const;

export interface RunOptions extends RuntimeOptions {
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
  /** Users' stages at the insertion points (part of the run identity). */
  transforms?: Transforms<RunConfig>;
  /** `--transform` modules, applied after `transforms` at each point. */
  transformModules?: readonly TransformModule[];
}

/**
 * The tokenizer's vocabulary size and EOS id, and the encoder itself only when the recipe or the input cut
 * needs it in this thread: otherwise its tables (~60 MB) live in the tokenizer workers alone.
 */
async function tokenizerFor(
  config: RunConfig,
  recipeNeedsIt: boolean,
  cacheDir: CacheDir,
): Promise<{ tokenizer: TokenizerFacts; textTokenizer?: Encoder }> {
  if (!recipeNeedsIt && config.maxInputTokens === undefined)
    return { tokenizer: await tokenizerFacts(config.tokenizer, config.eosToken, cacheDir) };
  const textTokenizer = await loadEncoder(config.tokenizer, config.eosToken);
  return { tokenizer: textTokenizer, textTokenizer };
}

export async function runMegadocs(config: RunConfig, run: RunOptions = {}): Promise<RunSummary> {
  return (await executeRun(config, run)) as RunSummary;
}

/**
 * The run up to the step named `until` (`source`, a step of the main chain such as `generate`, or `spill`:
 * both streams packed and parked), for benchmarks that time the chain step by step; the run stays unfinished.
 */
export async function runMegadocsUntil(
  config: RunConfig,
  until: string,
  run: RunOptions = {},
): Promise<void> {
  await executeRun(config, run, until);
}

async function executeRun(
  config: RunConfig,
  run: RunOptions,
  until?: string,
): Promise<RunSummary | undefined> {
  const progress = run.progress ?? newRunProgress();
  const recipe = await recipeFor(config);
  await prepareTokenizer(config.tokenizer, run.hubTokenizer);
  if (config.generatorTokenizer) await prepareTokenizer(config.generatorTokenizer, run.hubTokenizer);
  const { tokenizer, textTokenizer } = await tokenizerFor(config, recipeNeedsTokenizer(recipe), run.cacheDir);
  tokenDtype(tokenizer.vocabSize, config.tokenDtype); // --token-dtype must hold the vocabulary: checked first
  const generatorTokenizer = await generatorTokenizerFor(config);
  const budget = budgetFor(config);

  /** The main chain, source documents to tokenized parts. */
  const mainSteps = (context: JobContext): AnyStep[] => [
    ...generationSteps(
      config,
      { recipe, textTokenizer, generatorTokenizer, stats: progress.generate, signal: run.signal, budget },
      context,
    ),
    {
      name: 'assemble',
      stage: assembleStage({
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
    },
    ...transformSteps(context.transforms, 'megadocs'),
    { name: 'parts', stage: partsToTokenize() },
    tokenizeStep(config, run.cacheDir),
  ];
  /** Where each part lies in its stream's packed tokens, for a memmap's span files. */
  const spans =
    config.format === 'memmap' ? { real: new DocumentSpans(), synthetic: new DocumentSpans() } : undefined;
  /** Each stream's own steps, tokenized parts to sequences: the same stage values serve both streams. */
  const packSteps = (transforms: JobContext['transforms']) => {
    const sequences = transformSteps(transforms, 'sequences');
    return (stream: StreamName): AnyStep[] => [
      ...(spans ? [{ name: 'spans', stage: recordSpans(spans[stream]) }] : []),
      // Megatron packs at training time: each megadoc goes whole, as one entry of the index.
      config.format === 'megatron'
        ? megadocEntriesStep(stream, progress.pack[stream])
        : packStep(config, tokenizer.eosId, progress.pack[stream]),
      ...sequences,
    ];
  };

  return executeJob({
    command: 'run',
    config,
    inputs: config.inputs,
    out: config.out,
    overwrite: config.overwrite,
    reuseJournal: config.reuseJournal,
    rank: { rank: config.rank ?? 0, worldSize: config.worldSize ?? 1 },
    identity: await generationIdentity(config),
    budget,
    plan: planAtStart(config, { textTokenizer, generatorTokenizer, vocabSize: tokenizer.vocabSize }),
    points: RUN_POINTS,
    transforms: run.transforms,
    transformModules: run.transformModules,
    llm: {
      ...config,
      timeoutSeconds: config.timeout,
      apiKey: run.apiKey,
      stats: progress.generate,
      local: run.local,
    },
    hub: run.hub && { ...run.hub, selection: hubSelectionOf(config) ?? run.hub.selection },
    zstdEngine: run.zstdEngine,
    signal: run.signal,
    onWarning: run.onWarning,
    onInputBytes: (bytes) => {
      progress.inputBytes = bytes;
    },
    stopStats: () => ({ generate: statsSnapshot(progress.generate), assemble: progress.assemble }),
    work: async (context) => {
      const { out } = context;
      const docs = readDocs(context.shards, {
        textField: config.textField,
        idField: config.idField,
        onError: config.onError,
        stats: progress.source,
      });
      const steps = mainSteps(context);
      if (until !== undefined && until !== 'spill') {
        if (until !== 'source' && !steps.some((step) => step.name === until)) {
          throw new RangeError(
            `no step "${until}" in the run: ${['source', ...steps.map((s) => s.name), 'spill']}`,
          );
        }
        if (until === 'source') await drain(docs);
        else await drain(throughSteps<unknown>(docs, steps, until));
        return undefined;
      }
      const spillDir = join(out, SPILL_DIR);
      await mkdir(spillDir, { recursive: true });
      // The shards are compressed only in the writing phase: the compressor starts while the chain streams.
      if (config.compression !== 'none' && config.format === 'mds' && until === undefined)
        prewarmZstdCompression(run.zstdEngine);
      let spills: Record<StreamName, SequenceSpillReader> | undefined;
      try {
        const streamSeconds = await timed(async () => {
          spills = await parkStreams(throughSteps(docs, steps), packSteps(context.transforms), spillDir);
        });
        if (until === 'spill') return undefined;
        let written: Awaited<ReturnType<typeof writeOutput>> | undefined;
        const writeSeconds = await timed(async () => {
          written = await writeOutput(
            spills!,
            config,
            out,
            tokenizer,
            progress,
            run.zstdEngine,
            (file) => run.pusher?.addShard(file),
            spans,
          );
        });
        const summary = {
          ...summarize(progress, config, written!, { streamSeconds, writeSeconds }),
          documentTokens: documentTokens(tokenizer, config),
          ...(budget?.reached && { budget: budget.reached }),
        };
        await run.pusher?.finish(
          join(out, config.streams === 'separate' ? MIXTURE_FILE : completionFile(config)),
        );
        return summary;
      } finally {
        if (spills) await Promise.allSettled(STREAM_NAMES.map((stream) => spills![stream].close()));
        await rm(spillDir, { recursive: true, force: true });
      }
    },
  });
}

/** The config's `subset` and `split` of hf:// inputs, when it names either. */
function hubSelectionOf(config: RunConfig): HubSelection | undefined {
  return config.subset === undefined && config.split === undefined
    ? undefined
    : { config: config.subset, split: config.split };
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}
