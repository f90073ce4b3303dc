// Fitting documents to the generator's context (`--long-docs`): the input budget of a request, and a document
// over it cut into segments of whole lines (segment), cut once (truncate) or left out (skip), with counters.
import type { PromptFormat } from '../backends/backend.js';
import { MegadocsError } from '../errors.js';
import { commonPrefixLength, type TextTokenizer } from './input.js';
import { type PromptTemplate, renderPrompt } from './templates/index.js';

export const LONG_DOCS_MODES = ['segment', 'truncate', 'skip'] as const;
export type LongDocsMode = (typeof LONG_DOCS_MODES)[number];

/** What a generation of a segmented document puts between the generations of two segments. */
export const SEGMENT_JOINER = '\n\n';

/**
 * Tokens kept free besides the template's own text: per message for the chat template's role markers and
 * special tokens, and a share of the context for slot values other than the text (MAGA's genre and audience).
 */
const TOKENS_PER_MESSAGE = 16;
const SLACK_SHARE = 0.05;
/** The least input budget worth a request. */
const MIN_INPUT_BUDGET = 32;

/**
 * A safe estimate of a server's tokens when its tokenizer is not known (`--generator-tokenizer` not given): one
 * token per UTF-8 byte. Every token of a byte-level BPE (GPT-2, Llama 3, Qwen) or of a SentencePiece model with
 * byte fallback covers at least one byte, so no text has more tokens than bytes.
 */
export const BYTE_TOKENIZER: TextTokenizer = {
  encode: (text: string) => [...Buffer.from(text, 'utf8')],
  decode: (ids: ArrayLike<number>) => Buffer.from(Uint8Array.from(ids)).toString('utf8'),
};

export interface LongDocsCounters {
  /** Documents cut into more than one segment. */
  segmented: number;
  /** Segments of those documents. */
  segments: number;
  /** Single lines longer than the budget, cut at a token boundary. */
  linesCut: number;
  /** Documents cut to the budget (`--long-docs truncate`). */
  truncated: number;
  /** Documents left out (`--long-docs skip`). */
  skipped: number;
  /** Documents sent again with half the budget after a `context_length` answer. */
  retriedSmaller: number;
}

export function createLongDocsCounters(): LongDocsCounters {
  return { segmented: 0, segments: 0, linesCut: 0, truncated: 0, skipped: 0, retriedSmaller: 0 };
}

export interface RecipePrompts {
  name: string;
  /** Every template the recipe renders, with the new tokens its requests ask for. */
  prompts: ReadonlyArray<{ template: PromptTemplate; maxTokens?: number }>;
}

/** A template's own tokens with empty slots, plus the allowance per message. */
function templateTokens(template: PromptTemplate, format: PromptFormat, tokenizer: TextTokenizer): number {
  const rendered = renderPrompt(template, {}, format);
  const texts =
    'prompt' in rendered ? [rendered.prompt] : rendered.messages.map((message) => message.content);
  return texts.reduce((sum, text) => sum + tokenizer.encode(text).length + TOKENS_PER_MESSAGE, 0);
}

/**
 * Tokens of input one request may carry: context - max_tokens - the template's own tokens (with empty slots,
 * plus the allowances above), for the recipe's most demanding prompt. An error before any request when too
 * little is left.
 */
export function inputBudget(
  recipe: RecipePrompts,
  contextSize: number,
  format: PromptFormat,
  tokenizer: TextTokenizer,
): number {
  const needs = recipe.prompts.map(({ template, maxTokens }) => ({
    maxTokens: maxTokens ?? Math.floor(contextSize / 2),
    template: templateTokens(template, format, tokenizer),
  }));
  const most = needs.reduce((a, b) => (b.maxTokens + b.template > a.maxTokens + a.template ? b : a));
  const budget = contextSize - most.maxTokens - most.template - Math.ceil(contextSize * SLACK_SHARE);
  if (budget < MIN_INPUT_BUDGET) {
    throw new MegadocsError(
      'BAD_OPTION',
      `a context of ${contextSize} tokens leaves ${Math.max(budget, 0)} tokens of input to recipe ${recipe.name} (max tokens ${most.maxTokens}, its template ${most.template})`,
      {
        where: '--context-size',
        hint: 'Pass a smaller --max-tokens, or serve the model with a longer context',
      },
    );
  }
  return budget;
}

/** `text` cut into pieces of at most `budget` tokens at token boundaries (never inside a character). */
function cutAtTokens(text: string, budget: number, tokenizer: TextTokenizer): string[] {
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const ids = tokenizer.encode(rest);
    if (ids.length <= budget) {
      pieces.push(rest);
      break;
    }
    const length = Math.max(1, commonPrefixLength(rest, tokenizer.decode(ids.slice(0, budget))));
    pieces.push(rest.slice(0, length));
    rest = rest.slice(length);
  }
  return pieces;
}

/**
 * `text` in segments of whole lines, each at most `budget` tokens (counted as one text); a single line longer
 * than the budget is cut at token boundaries and counted in `linesCut`. One segment when it fits.
 */
export function segmentAtLines(
  text: string,
  budget: number,
  tokenizer: TextTokenizer,
): { segments: string[]; linesCut: number } {
  if (tokenizer.encode(text).length <= budget) return { segments: [text], linesCut: 0 };
  const segments: string[] = [];
  let linesCut = 0;
  let current: string[] = [];
  let currentTokens = 0;
  const flush = () => {
    if (current.length > 0) segments.push(current.join('\n'));
    current = [];
    currentTokens = 0;
  };
  for (const line of text.split('\n')) {
    // The newline that joins it to the segment counts too.
    const tokens = tokenizer.encode(`${line}\n`).length;
    if (tokens > budget) {
      flush();
      linesCut += 1;
      segments.push(...cutAtTokens(line, budget, tokenizer));
      continue;
    }
    if (currentTokens + tokens > budget) flush();
    current.push(line);
    currentTokens += tokens;
    // Counted line by line, a join may merge tokens differently: checked as one text.
    if (current.length > 1 && tokenizer.encode(current.join('\n')).length > budget) {
      current.pop();
      flush();
      current.push(line);
      currentTokens = tokens;
    }
  }
  flush();
  return { segments: segments.filter((segment) => segment.length > 0), linesCut };
}

/** The last lines of `text` within `budget` tokens (the end of a line longer than that, cut at tokens). */
function tailWithin(text: string, budget: number, tokenizer: TextTokenizer): string {
  if (tokenizer.encode(text).length <= budget) return text;
  const lines = text.split('\n');
  let kept = 0;
  while (
    kept < lines.length &&
    tokenizer.encode(lines.slice(lines.length - kept - 1).join('\n')).length <= budget
  ) {
    kept += 1;
  }
  if (kept > 0) return lines.slice(lines.length - kept).join('\n');
  return cutAtTokens(lines.at(-1)!, budget, tokenizer).at(-1)!;
}

/**
 * The text around a split point within `budget` tokens (stretch on a long document): up to half of it before the
 * split, in whole lines back from it, and the rest after it, in whole lines on from it.
 */
export function windowAround(
  text: string,
  offset: number,
  budget: number,
  tokenizer: TextTokenizer,
): { prefix: string; suffix: string } {
  const prefix = tailWithin(text.slice(0, offset), Math.floor(budget / 2), tokenizer);
  const room = budget - tokenizer.encode(prefix).length;
  const suffix = segmentAtLines(text.slice(offset), room, tokenizer).segments[0] ?? '';
  return { prefix, suffix };
}

/** A document as the recipe gets it: its text (cut under truncate) and its segments; undefined: left out. */
export interface FittedInput {
  text: string;
  segments: string[];
}

/** Fits `text` to `budget` as `mode` says, counting what it did. */
export function fitInput(
  text: string,
  mode: LongDocsMode,
  budget: number,
  tokenizer: TextTokenizer,
  counters: LongDocsCounters,
): FittedInput | undefined {
  const { segments, linesCut } = segmentAtLines(text, budget, tokenizer);
  if (segments.length <= 1 && linesCut === 0) return { text, segments: [text] };
  if (mode === 'skip') {
    counters.skipped += 1;
    return undefined;
  }
  if (mode === 'truncate') {
    counters.truncated += 1;
    return { text: segments[0]!, segments: [segments[0]!] };
  }
  counters.segmented += 1;
  counters.segments += segments.length;
  counters.linesCut += linesCut;
  return { text, segments };
}

/** The name (and so the seed) of a call for segment `position`: the first keeps the name a short text has. */
export function segmentCallName(name: string, position: number): string {
  return position === 0 ? name : `${name}#s${position}`;
}

/** Whether a failed request was refused for exceeding the context (the local model's cause, vLLM's wording). */
export function isContextLengthFailure(failure: { reason: string; message: string }): boolean {
  return failure.reason === 'context_length' || /maximum context length/i.test(failure.message);
}
