// `megadocs generate` as a library call: source -> generate stage -> generation records -> jsonl.zst shards,
// users' transforms before and after generation, on the executor (run directory, journal, resume, stats).

import type { LocalRunOptions } from '../backends/local-backend.js';
import {
  type GenerateConfig,
  type GenerateConfigInput,
  parseGenerateConfig,
  type RuntimeOptions,
} from '../config.js';
import { planAtStart } from '../cost-plan.js';
import { budgetFor } from '../generate/budget.js';
import { generationRecord } from '../generate/engine.js';
import { recipeNeedsTokenizer } from '../generate/recipes/index.js';
import { createGenerateStats, type GenerateStats, statsSnapshot } from '../generate/stats.js';
import type { HubInputOptions } from '../hub/shard.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { readDocs } from '../sources/read.js';
import type { SourceStats } from '../sources/types.js';
import { flattenArrays } from '../stream.js';
import { loadEncoder, prepareTokenizer } from '../tokenize/encoders.js';
import type { DocGenerations } from '../types.js';
import { executeJob } from './executor.js';
import { generationIdentity, generationSteps, generatorTokenizerFor, recipeFor } from './generation.js';
import { throughSteps } from './steps.js';
import type { TransformModule, Transforms } from './transforms.js';

/** Live counters for the progress display. */
export interface GenerateProgress {
  source: SourceStats;
  generate: GenerateStats;
  /** Total input bytes when known (for the ETA). */
  inputBytes?: number;
  shards: number;
}

export type { GenerateConfig, GenerateConfigInput } from '../config.js';

export interface GenerateRunOptions extends Pick<RuntimeOptions, 'zstdEngine' | 'hubTokenizer'> {
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
  /** Users' stages at the insertion points (part of the run identity). */
  transforms?: Transforms<GenerateConfig>;
  /** `--transform` modules, applied after `transforms` at each point. */
  transformModules?: readonly TransformModule[];
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

/** The insertion points of `megadocs generate`: source documents before generation, generations after it. */
export const GENERATE_POINTS = ['documents', 'generations'] as const;

/** Checks `input` first (parseGenerateConfig: every field, defaults filled in), so no request is sent on a bad config. */
export async function runGenerate(
  input: GenerateConfigInput,
  run: GenerateRunOptions = {},
): Promise<GenerateSummary> {
  const config = parseGenerateConfig(input, 'the runGenerate config');
  const progress = run.progress ?? newGenerateProgress();
  const stats = progress.generate;
  const recipe = await recipeFor(config);
  await prepareTokenizer(config.tokenizer, run.hubTokenizer);
  if (config.generatorTokenizer) await prepareTokenizer(config.generatorTokenizer, run.hubTokenizer);
  const textTokenizer =
    recipeNeedsTokenizer(recipe) || config.maxInputTokens ? await loadEncoder(config.tokenizer) : undefined;
  const generatorTokenizer = await generatorTokenizerFor(config);
  const budget = budgetFor(config);
  const summary = await executeJob({
    command: 'generate',
    config,
    inputs: config.inputs,
    out: config.out,
    overwrite: config.overwrite,
    reuseJournal: config.reuseJournal,
    identity: await generationIdentity(config),
    budget,
    plan: planAtStart<GenerateSummary>(config, { textTokenizer, generatorTokenizer }),
    points: GENERATE_POINTS,
    transforms: run.transforms,
    transformModules: run.transformModules,
    llm: { ...config, apiKey: run.apiKey, stats, local: run.local },
    hub: run.hub,
    zstdEngine: run.zstdEngine,
    signal: run.signal,
    onWarning: run.onWarning,
    onInputBytes: (bytes) => {
      progress.inputBytes = bytes;
    },
    stopStats: () => statsSnapshot(stats),
    work: async (context) => {
      const { shards, out } = context;
      const records = throughSteps<DocGenerations>(
        readDocs(shards, { ...config.record, stats: progress.source }),
        generationSteps(
          config,
          { recipe, textTokenizer, generatorTokenizer, stats, signal: run.signal, budget },
          context,
        ),
      )
        .map((done) => done.generations.map(generationRecord))
        .through(flattenArrays());
      const onShard = () => {
        progress.shards += 1;
      };
      const written = await jsonlSink({
        dir: out,
        compression: config.compression,
        zstdEngine: run.zstdEngine,
        shardSize: config.shardSize,
        onShard,
      })(records);
      return {
        ...statsSnapshot(stats),
        documents: stats.documents,
        generations: stats.generations,
        sourceFiles: progress.source.files,
        malformedRecords: progress.source.skipped,
        shards: written.shards,
        rawBytes: written.rawBytes,
        storedBytes: written.storedBytes,
        ...(budget?.reached && { budget: budget.reached }),
      } satisfies GenerateSummary;
    },
  });
  return summary!;
}
