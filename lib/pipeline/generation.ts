// What `generate` and `run` share: the recipe a config names (templates and sampling overrides applied),
// and the generation part of their chains: `documents` transforms, generate, its failure budget, `generations` ones.

import type { LlmBackend } from '../backends/backend.js';
import { outputOptions } from '../config.js';
import type { GenerationBudget } from '../generate/budget.js';
import { generateStage, type LongDocsOptions } from '../generate/engine.js';
import { failureBudgetStage } from '../generate/failure-budget.js';
import type { TextTokenizer } from '../generate/input.js';
import { BYTE_TOKENIZER, type LongDocsMode } from '../generate/long-docs.js';
import { resolveRecipe } from '../generate/recipes/index.js';
import type { Recipe } from '../generate/recipes/types.js';
import { recipeFilesIdentity } from '../generate/setup.js';
import type { GenerateStats } from '../generate/stats.js';
import { loadTemplates } from '../generate/templates/index.js';
import { loadEncoder } from '../tokenize/encoders.js';
import type { JobContext } from './executor.js';
import type { AnyStep } from './steps.js';
import { transformSteps } from './transforms.js';

/** The recipe and request fields both commands' configs have. */
export interface GenerationConfig {
  recipe: string;
  generations?: number;
  styles?: string[];
  templates?: string;
  nPerRequest: number;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  jsonMode: boolean;
  seed: number;
  onTruncated: 'keep' | 'drop';
  maxInputTokens?: number;
  /** Tokens per request (`--context-size`); default what the backend reports. */
  contextSize?: number;
  longDocs: LongDocsMode;
  /** Bytes of finished documents held for output order (a throughput knob, not part of the output). */
  reorderBuffer?: number;
  /** The share of documents that may lose generations to failed requests (above it: IncompleteRunError). */
  maxFailures: number;
}

/** The options that decide a generating command's output: its output options and the recipe files' contents. */
export async function generationIdentity(config: GenerationConfig): Promise<Record<string, unknown>> {
  return { ...outputOptions(config), ...(await recipeFilesIdentity(config.recipe, config.templates)) };
}

/** The recipe of `config`, with its `--templates` file and sampling overrides. */
export async function recipeFor(config: GenerationConfig): Promise<Recipe> {
  return resolveRecipe({
    recipe: config.recipe,
    generations: config.generations,
    styles: config.styles,
    nPerRequest: config.nPerRequest,
    sampling: { temperature: config.temperature, topP: config.topP, maxTokens: config.maxTokens },
    templates: config.templates ? await loadTemplates(config.templates) : undefined,
    jsonMode: config.jsonMode,
  });
}

export interface GenerationParts {
  recipe: Recipe;
  textTokenizer?: TextTokenizer;
  /** `--generator-tokenizer`, loaded. */
  generatorTokenizer?: TextTokenizer;
  stats: GenerateStats;
  signal?: AbortSignal;
  /** `--max-output-tokens` / `--max-documents` (budgetFor(config)); not part of the run identity. */
  budget?: GenerationBudget;
}

/**
 * How documents are fitted to the context: with its size known (`--context-size`, else the backend's), counted
 * with `--generator-tokenizer`, else the local model's own tokenizer, else one token per byte (never fewer).
 */
export function longDocsOptions(
  config: Pick<GenerationConfig, 'contextSize' | 'longDocs'>,
  parts: Pick<GenerationParts, 'generatorTokenizer'>,
  backend: Pick<LlmBackend, 'contextSize' | 'tokenizer'>,
): LongDocsOptions | undefined {
  const contextSize = config.contextSize ?? backend.contextSize;
  if (contextSize === undefined) return undefined;
  const tokenizer = parts.generatorTokenizer ?? backend.tokenizer ?? BYTE_TOKENIZER;
  return { mode: config.longDocs, contextSize, tokenizer };
}

/** Loads `--generator-tokenizer` when given. */
export async function generatorTokenizerFor(config: {
  generatorTokenizer?: string;
}): Promise<TextTokenizer | undefined> {
  return config.generatorTokenizer === undefined ? undefined : loadEncoder(config.generatorTokenizer);
}

/** Source documents to each document's generations: `documents` transforms, generate, `generations` transforms. */
export function generationSteps(
  config: GenerationConfig,
  parts: GenerationParts,
  { backend, journal, reusedAnswers, transforms }: JobContext,
): AnyStep[] {
  return [
    ...transformSteps(transforms, 'documents'),
    {
      name: 'generate',
      stage: generateStage({
        backend: backend!,
        recipe: parts.recipe,
        model: backend!.model,
        seed: config.seed,
        onTruncated: config.onTruncated,
        maxInputTokens: config.maxInputTokens,
        longDocs: longDocsOptions(config, parts, backend!),
        textTokenizer: parts.textTokenizer,
        journal,
        reusedAnswers,
        reorderBuffer: config.reorderBuffer,
        budget: parts.budget,
        stats: parts.stats,
        signal: parts.signal,
      }),
    },
    // Counted before users' transforms, so none can hide a failure.
    {
      name: 'failure-budget',
      stage: failureBudgetStage({ maxFailures: config.maxFailures, stats: parts.stats }),
    },
    ...transformSteps(transforms, 'generations'),
  ];
}
