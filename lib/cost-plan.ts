// `megadocs plan` as a library call (planRun): a run's documents, tokens, requests, output dataset, LLM time and cost,
// estimated before launch by the real generate stage on a dry-run backend; and the same figures from a run's stats.
import type { GenerateConfig, RunConfig } from './config.js';
import { DEFAULT_ASSUMPTIONS, type OutputAssumptions, PlanningBackend } from './cost-plan-backend.js';
import { planDocuments } from './cost-plan-sample.js';
import { messageOf } from './errors.js';
import { generateStage } from './generate/engine.js';
import type { TextTokenizer } from './generate/input.js';
import { recipeNeedsTokenizer } from './generate/recipes/index.js';
import { createGenerateStats } from './generate/stats.js';
import type { HubInputOptions } from './hub/shard.js';
import type { TokenizerDownloadOptions } from './hub/tokenizer-download.js';
import { generatorTokenizerFor, longDocsOptions, recipeFor } from './pipeline/generation.js';
import { planShards } from './plan.js';
import { expandInputs } from './sources/inputs.js';
import type { RecordOptions, ShardRef } from './sources/types.js';
import { drain, fromAsyncIterable } from './stream.js';
import { loadEncoder, prepareTokenizer, tokenizerFacts } from './tokenize/encoders.js';

export type { OutputAssumptions } from './cost-plan-backend.js';

/** What the plan assumes beside the config: the sample, the servers' speed and the prices. */
export interface PlanSettings {
  /** Plan on a seeded sample of this many documents (default: all of them). */
  sample?: number;
  /** The sample's seed (default: the config's `seed`). */
  sampleSeed?: number;
  /** Generated tokens per second of one endpoint (`--server-tokens-per-s`); several `--llm` share the work. */
  serverTokensPerS?: number;
  /** USD per million prompt and per million generated tokens (`--price-per-mtok IN,OUT`). */
  pricePerMtok?: [number, number];
  assumptions?: Partial<OutputAssumptions>;
  hub?: HubInputOptions;
  /** Where an `hf:` tokenizer is downloaded from and to (see loadEncoder). */
  hubTokenizer?: TokenizerDownloadOptions;
  /** Counts input and prompt tokens (default: `--generator-tokenizer` for prompts, `--tokenizer` for inputs). */
  tokenizer?: TextTokenizer;
  /** What a starting run has loaded already: not loaded again. */
  loaded?: { textTokenizer?: TextTokenizer; generatorTokenizer?: TextTokenizer; vocabSize?: number };
}

/** Documents a run plans on at its start (megadocs.json `plan.planned`): a seeded sample, read once more. */
export const PLAN_SAMPLE_AT_START = 256;

/**
 * Counts tokens as UTF-8 bytes / 4 (English under a BPE of 100k-200k tokens): what a run's plan at its start uses
 * when the run holds no tokenizer in its own thread, so that planning costs no second load of one.
 */
export const ESTIMATED_TOKENIZER: TextTokenizer = {
  encode: (text: string) => new Array<number>(Math.ceil(Buffer.byteLength(text) / 4)).fill(0),
  decode: () => '',
};

/** The output dataset: `run`'s token shards, or `generate`'s text shards (bytes only). */
export interface DatasetFigures {
  tokens?: number;
  realTokens?: number;
  syntheticTokens?: number;
  sequences?: number;
  shards: number;
  /** Bytes of the shards before compression (planned) / as stored (actual). */
  bytes: number;
}

/** The figures a plan gives and a run records beside them (megadocs.json `plan.planned`, `plan.actual`). */
export interface PlanFigures {
  documents: number;
  inputTokens?: number;
  requests: number;
  /** Samples asked over all requests (the sum of `n`). */
  samples?: number;
  generations: number;
  promptTokens: number;
  outputTokens: number;
  dataset?: DatasetFigures;
  llmSeconds?: number;
  cost?: { input: number; output: number; total: number; currency: 'USD' };
  /** Planned only: documents read to estimate (all of them when not sampled). */
  sampled?: number;
  estimated?: boolean;
  /** Planned only: the ratios and rates the estimate used. */
  assumptions?: OutputAssumptions & {
    serverTokensPerS?: number;
    endpoints: number;
    pricePerMtok?: [number, number];
    nPerRequest: number;
  };
}

type PlannedConfig = RunConfig | GenerateConfig;

function recordOf(config: PlannedConfig): RecordOptions {
  return 'record' in config
    ? config.record
    : { textField: config.textField, idField: config.idField, onError: config.onError };
}

/** This worker's share of the inputs (`--rank`/`--world-size` of run). */
async function shardsOf(config: PlannedConfig, hub?: HubInputOptions): Promise<ShardRef[]> {
  const all = await expandInputs(config.inputs, { hub });
  const rank =
    'worldSize' in config ? { rank: config.rank ?? 0, worldSize: config.worldSize ?? 1 } : undefined;
  return rank && rank.worldSize > 1 ? planShards(all, rank) : all;
}

/** LLM time and cost of the prompt and generated tokens at the settings' rate and prices. */
function timeAndCost(
  figures: Pick<PlanFigures, 'promptTokens' | 'outputTokens'>,
  settings: PlanSettings,
  endpoints: number,
): Pick<PlanFigures, 'llmSeconds' | 'cost'> {
  const llmSeconds =
    settings.serverTokensPerS === undefined
      ? undefined
      : figures.outputTokens / (settings.serverTokensPerS * endpoints);
  const price = settings.pricePerMtok;
  const cost = price && {
    input: (figures.promptTokens / 1e6) * price[0],
    output: (figures.outputTokens / 1e6) * price[1],
    total: (figures.promptTokens / 1e6) * price[0] + (figures.outputTokens / 1e6) * price[1],
    currency: 'USD' as const,
  };
  return { ...(llmSeconds !== undefined && { llmSeconds }), ...(cost && { cost }) };
}

/** Bytes per token id in the shards: uint16 under 65,536 tokens, else 4 bytes. */
function tokenWidth(vocabSize: number): number {
  return vocabSize < 65_536 ? 2 : 4;
}

/**
 * `run`'s dataset from the token counts: the real stream (each document + EOS, seen --real-epochs times), the
 * synthetic one (the generations, with the original unless left out, each part ending with EOS), packed into
 * --seq-len sequences (the tail dropped) and mixed by --synthetic-weight.
 */
function runDataset(
  config: RunConfig,
  counts: { documents: number; inputTokens: number; outputTokens: number; generations: number },
  vocabSize: number,
): DatasetFigures {
  const eos = config.eos ? 1 : 0;
  const withOriginal = config.assemble !== 'stitch' || config.original !== 'none';
  const parts = config.assemble === 'stretch' ? counts.documents : counts.generations + counts.documents;
  const realTokens = counts.inputTokens + eos * counts.documents;
  const syntheticTokens =
    counts.outputTokens +
    (withOriginal ? counts.inputTokens : 0) +
    eos * (config.separator === 'eos' ? parts : counts.documents);
  const realSequences = Math.floor(realTokens / config.seqLen) * config.realEpochs;
  const syntheticPacked = Math.floor(syntheticTokens / config.seqLen);
  const syntheticSequences =
    config.syntheticWeight === undefined
      ? syntheticPacked
      : Math.floor(realSequences / (1 - config.syntheticWeight)) - realSequences;
  const sequences = realSequences + syntheticSequences;
  const bytes = sequences * config.seqLen * tokenWidth(vocabSize);
  return {
    tokens: sequences * config.seqLen,
    realTokens,
    syntheticTokens,
    sequences,
    shards: Math.max(1, Math.ceil(bytes / config.shardSize)),
    bytes,
  };
}

/** Bytes of a generation record of `generate`'s shards besides its text (ids, usage, model, seed). */
const RECORD_OVERHEAD_BYTES = 200;
/** Bytes of generated text per token (English under a BPE of ~100k-200k tokens). */
const TEXT_BYTES_PER_TOKEN = 4;

function generateDataset(config: GenerateConfig, outputTokens: number, generations: number): DatasetFigures {
  const bytes = outputTokens * TEXT_BYTES_PER_TOKEN + generations * RECORD_OVERHEAD_BYTES;
  return { shards: Math.max(1, Math.ceil(bytes / config.shardSize)), bytes };
}

/** The plan of `config` on `shards` (the executor's resolved inputs at run start; planRun resolves them). */
export async function planOnShards(
  config: PlannedConfig,
  shards: ShardRef[],
  settings: PlanSettings = {},
): Promise<PlanFigures> {
  const assumptions = { ...DEFAULT_ASSUMPTIONS, ...settings.assumptions };
  const recipe = await recipeFor(config);
  const { loaded } = settings;
  if (!loaded) {
    await prepareTokenizer(config.tokenizer, settings.hubTokenizer);
    if (config.generatorTokenizer) await prepareTokenizer(config.generatorTokenizer, settings.hubTokenizer);
  }
  const needsEncoder = recipeNeedsTokenizer(recipe) || config.maxInputTokens !== undefined;
  const textTokenizer = needsEncoder
    ? (loaded?.textTokenizer ?? (await loadEncoder(config.tokenizer)))
    : undefined;
  const generatorTokenizer = loaded ? loaded.generatorTokenizer : await generatorTokenizerFor(config);
  const counter = settings.tokenizer ?? textTokenizer ?? (await loadEncoder(config.tokenizer));
  const backend = new PlanningBackend(
    config.api === 'completions' ? 'text' : 'chat',
    config.model ?? 'planned',
    generatorTokenizer ?? counter,
    assumptions,
    config.contextSize,
  );
  const stats = createGenerateStats();
  const stage = generateStage({
    backend,
    recipe,
    model: backend.model,
    seed: config.seed,
    onTruncated: 'keep',
    maxInputTokens: config.maxInputTokens,
    textTokenizer,
    longDocs: longDocsOptions(config, { generatorTokenizer }, backend),
    stats,
  });
  const sample =
    settings.sample === undefined
      ? undefined
      : { size: settings.sample, seed: settings.sampleSeed ?? config.seed };
  const documents = await planDocuments(shards, recordOf(config), sample);
  let read = 0;
  let inputTokens = 0;
  await drain(
    fromAsyncIterable(documents.docs)
      .tap((doc) => {
        read += 1;
        inputTokens += counter.encode(doc.text).length;
      })
      .through(stage),
  );
  const total = documents.total();
  const scale = read > 0 ? total / read : 0;
  const scaled = (value: number) => Math.round(value * scale);
  const counts = {
    documents: total,
    inputTokens: scaled(inputTokens),
    requests: scaled(backend.counts.requests),
    samples: scaled(backend.counts.samples),
    generations: total * recipe.generations,
    promptTokens: scaled(backend.counts.promptTokens),
    outputTokens: scaled(backend.counts.outputTokens),
  };
  const endpoints = config.llm.length;
  const dataset =
    'record' in config
      ? generateDataset(config, counts.outputTokens, counts.generations)
      : runDataset(
          config,
          counts,
          loaded?.vocabSize ?? (await tokenizerFacts(config.tokenizer, config.eosToken)).vocabSize,
        );
  return {
    ...counts,
    dataset,
    ...timeAndCost(counts, settings, endpoints),
    sampled: read,
    estimated: documents.sampled,
    assumptions: {
      ...assumptions,
      endpoints,
      nPerRequest: config.nPerRequest,
      ...(settings.serverTokensPerS !== undefined && { serverTokensPerS: settings.serverTokensPerS }),
      ...(settings.pricePerMtok && { pricePerMtok: settings.pricePerMtok }),
    },
  };
}

/** The plan of a `run` (or `generate`) config before launch: no LLM request, no server needed. */
export async function planRun(config: PlannedConfig, settings: PlanSettings = {}): Promise<PlanFigures> {
  return planOnShards(config, await shardsOf(config, settings.hub), settings);
}

/**
 * megadocs.json `plan` of a starting run (the executor's Job.plan): planned on a seeded sample of its inputs with
 * what it has loaded (the served context size once the backend is open); a plan that fails is recorded as `error`,
 * never stopping the run.
 */
export function planAtStart<S extends object>(
  config: PlannedConfig,
  loaded: NonNullable<PlanSettings['loaded']>,
): {
  planned(shards: ShardRef[], backend?: { contextSize?: number }): Promise<Record<string, unknown>>;
  actual(summary: S, planned: Record<string, unknown> | undefined): Record<string, unknown>;
} {
  return {
    planned: async (shards, backend) => {
      try {
        const figures = await planOnShards(
          { ...config, contextSize: config.contextSize ?? backend?.contextSize },
          shards,
          {
            sample: PLAN_SAMPLE_AT_START,
            tokenizer: loaded.textTokenizer ?? loaded.generatorTokenizer ?? ESTIMATED_TOKENIZER,
            loaded,
          },
        );
        return { ...figures };
      } catch (error) {
        return { error: messageOf(error) };
      }
    },
    actual: (summary, planned) => ({
      ...actualFigures(summary as Record<string, unknown>, planned as Pick<PlanFigures, 'assumptions'>),
    }),
  };
}

/** Prompt and generated tokens over all recipes of a stats snapshot (megadocs.json `stats.generate`). */
function snapshotTokens(generate: Record<string, unknown>): { prompt: number; completion: number } {
  const byRecipe = (generate.tokens ?? {}) as Record<string, { prompt: number; completion: number }>;
  return Object.values(byRecipe).reduce(
    (sum, usage) => ({ prompt: sum.prompt + usage.prompt, completion: sum.completion + usage.completion }),
    { prompt: 0, completion: 0 },
  );
}

/** The dataset a `run` summary says it wrote. */
function writtenRunDataset(summary: Record<string, unknown>): DatasetFigures {
  const output = summary.output as { sequences: number; shards: number; storedBytes: number; tokens: number };
  const streams = summary.tokens as { real: number; synthetic: number };
  return {
    tokens: output.tokens,
    realTokens: streams.real,
    syntheticTokens: streams.synthetic,
    sequences: output.sequences,
    shards: output.shards,
    bytes: output.storedBytes,
  };
}

/**
 * The plan's figures as a run's summary has them (megadocs.json `plan.actual`), priced as the plan was; `llmSeconds`
 * is the generating time (run: its streaming phase).
 */
export function actualFigures(
  summary: Record<string, unknown>,
  planned: Pick<PlanFigures, 'assumptions'> | undefined,
): PlanFigures {
  const run = 'assemble' in summary;
  const generate = (run ? summary.generate : summary) as Record<string, unknown>;
  const requests = generate.requests as { completed: number; replayed: number };
  const tokens = snapshotTokens(generate);
  const figures = {
    documents: generate.documents as number,
    requests: requests.completed + requests.replayed,
    generations: generate.generations as number,
    promptTokens: tokens.prompt,
    outputTokens: tokens.completion,
  };
  const dataset = run
    ? writtenRunDataset(summary)
    : { shards: summary.shards as number, bytes: summary.storedBytes as number };
  const phases = summary.phaseSeconds as { streaming: number } | undefined;
  const llmSeconds = run ? phases?.streaming : (generate.wallSeconds as number | undefined);
  const priced = planned?.assumptions?.pricePerMtok
    ? timeAndCost(figures, { pricePerMtok: planned.assumptions.pricePerMtok }, 1)
    : {};
  return { ...figures, dataset, ...(llmSeconds !== undefined && { llmSeconds }), ...priced };
}
