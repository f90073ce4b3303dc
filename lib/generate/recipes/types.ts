// What a recipe is: per document, which requests to make (prompt template, slots, n, sampling) and how
// their choices become draft generations. The engine does seeds, journal, retries, filters and counting.
import type { Doc, Generation, Usage } from '../../types.js';
import type { TextTokenizer } from '../input.js';
import type { RecipePrompts } from '../long-docs.js';
import type { PostprocessOptions } from '../postprocess.js';
import type { PromptTemplate, Slots } from '../templates/index.js';

export interface Sampling {
  temperature?: number;
  topP?: number;
  /** New tokens per generation. */
  maxTokens?: number;
}

/** One request a recipe wants made for the current document. */
export interface RecipeCall {
  /** Unique within the document and stable across runs (`wiki:0`, `pairs:1`, `rewrite:3`): part of the seed. */
  name: string;
  template: PromptTemplate;
  slots: Slots;
  n: number;
  sampling: Sampling;
  responseFormat?: 'json_object';
}

export interface ChoiceOutcome {
  text: string;
  finishReason: string;
  /** The request's usage, its completion tokens shared among the choices by text length. */
  usage: Usage;
}

export type CallOutcome =
  | { ok: true; choices: ChoiceOutcome[]; model: string; seed: number }
  | { ok: false; reason: string; message: string; seed: number };

export interface RecipeContext {
  doc: Doc;
  /**
   * The text the model sees: `doc.text`, cut to `--max-input-tokens` when that is set (and to the input budget
   * under `--long-docs truncate`); one segment of it when the engine runs the recipe per segment.
   */
  text: string;
  /** `text` in segments of whole lines under the input budget (one: it fits); read by `segmentsItself` recipes. */
  segments: string[];
  /** Tokens of input one request may carry (context - max tokens - template), when the context is known. */
  inputBudget?: number;
  /** Counts tokens against `inputBudget`: the generator's tokenizer, or a safe estimate. */
  generatorTokenizer?: TextTokenizer;
  /** Present when the recipe declared `needsTokenizer`, or token bounds / an input budget are set. */
  textTokenizer?: TextTokenizer;
  call(call: RecipeCall): Promise<CallOutcome>;
  /** Counts a recipe-level retry (e.g. MAGA's invalid JSON) under `reason`. */
  countRetry(reason: string): void;
}

/**
 * A generation before the engine's filters: the recipe's view of one choice (the engine adds doc and recipe).
 * `segment`: which segment of a long document it rewrites (the engine joins a generation's segments in order).
 */
export type Draft = Omit<Generation, 'docId' | 'recipe' | 'usage'> & { usage: Usage; segment?: number };

export interface RecipeOutput {
  drafts: Draft[];
  /** Generations lost because their request failed. */
  failed: number;
  /** Why the document produced nothing at all (e.g. `invalid_pairs_json`), counted per reason. */
  skipped?: string;
  /** Segments the drafts span (default 1): generation i is whole when each segment has a draft of index i. */
  segments?: number;
}

export interface Recipe extends RecipePrompts {
  /** Recorded in every generation's `recipe` field and in the seeds. */
  name: string;
  /** Generations per document (G). */
  generations: number;
  /** Stretch splits by tokens. */
  needsTokenizer: boolean;
  /**
   * Reads `segments` itself (MAGA: stage 1 on the first, stage 2 on each; stretch: windows around its splits);
   * otherwise the engine runs the recipe once per segment and joins generation g of each.
   */
  segmentsItself?: boolean;
  postprocess: PostprocessOptions;
  run(context: RecipeContext): Promise<RecipeOutput>;
}

/** Draft generations from a call's choices; `fields(i)` adds the recipe's own fields to choice i. */
export function draftsOf(
  outcome: Extract<CallOutcome, { ok: true }>,
  fields: (choice: number) => Partial<Draft> & { index: number },
): Draft[] {
  return outcome.choices.map((choice, position) => ({
    text: choice.text,
    finishReason: choice.finishReason,
    usage: choice.usage,
    model: outcome.model,
    seed: outcome.seed,
    ...fields(position),
  }));
}
