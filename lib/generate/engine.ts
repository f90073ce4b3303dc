// The generate stage: documents in, each document's generations out, in input order. It keeps the backend's
// C requests busy while finished documents wait for order in a buffer bounded by bytes; answers are journaled.
import { setMaxListeners } from 'node:events';
import {
  type CompletionRequest,
  type CompletionResult,
  type LlmBackend,
  RequestFailedError,
} from '../backends/backend.js';
import { fromAsyncIterable, toAsyncIterable } from '../stream.js';
import type { Doc, DocGenerations, Generation, Stage, Usage } from '../types.js';
import { type GenerationBudget, outputTokensOf } from './budget.js';
import { cutAtLineBoundary, type TextTokenizer } from './input.js';
import { type Journal, type JournalOutcome, requestKey } from './journal.js';
import type { ReusedAnswers } from './journal-reuse.js';
import {
  createLongDocsCounters,
  type FittedInput,
  fitInput,
  inputBudget,
  isContextLengthFailure,
  type LongDocsMode,
  SEGMENT_JOINER,
  segmentCallName,
} from './long-docs.js';
import { mainKeywords, postprocess } from './postprocess.js';
import type {
  CallOutcome,
  ChoiceOutcome,
  Draft,
  Recipe,
  RecipeCall,
  RecipeContext,
  RecipeOutput,
} from './recipes/types.js';
import { ReorderBuffer } from './reorder-buffer.js';
import { requestSeed } from './seeds.js';
import { createGenerateStats, type GenerateStats, increment } from './stats.js';
import { renderPrompt } from './templates/index.js';

export interface GenerateStageOptions {
  backend: LlmBackend;
  recipe: Recipe;
  /** The model name sent to the backend (part of the journal key). */
  model: string;
  /** Global `--seed`. */
  seed: number;
  onTruncated: 'keep' | 'drop';
  /** Cut inputs longer than this many tokens at a line boundary (needs `textTokenizer`). */
  maxInputTokens?: number;
  /** Tokenizer for split points, token bounds and input cuts. */
  textTokenizer?: TextTokenizer;
  /** How documents over the input budget are fitted to the context; none: sent whole, as they are. */
  longDocs?: LongDocsOptions;
  /** Replays earlier runs' answers and records this run's. */
  journal?: Journal;
  /** Answers of a replaced run (`--reuse-journal`), asked when the journal has none for a request. */
  reusedAnswers?: ReusedAnswers;
  /** `--max-output-tokens` / `--max-documents`: no document is started past it, and the output is cut at it. */
  budget?: GenerationBudget;
  /** Bytes of documents held for output order, input and generated text (default DEFAULT_REORDER_BUFFER). */
  reorderBuffer?: number;
  stats?: GenerateStats;
  /** Aborting stops the requests in flight. */
  signal?: AbortSignal;
}

export interface LongDocsOptions {
  mode: LongDocsMode;
  /** Tokens per request, prompt and output (`--context-size`, else what the backend reports). */
  contextSize: number;
  /** Counts the budget: `--generator-tokenizer`, the local model's own, or the safe byte estimate. */
  tokenizer: TextTokenizer;
}

/** Whether a call of the first try of a document may be tried again with a smaller budget; set when it should. */
interface Attempt {
  retryable: boolean;
  contextExceeded: boolean;
}

/** The reorder buffer's bound (`--reorder-buffer`): room for minutes of documents behind a late one. */
export const DEFAULT_REORDER_BUFFER = 256 * 2 ** 20;

/**
 * Requests kept wanting the server per slot of the backend (those waiting out a retry backoff do not count):
 * C in flight and C queued, so a freed slot is taken at once.
 */
const REQUESTS_PER_SLOT = 2;

/** One stream's documents in flight: the buffer they finish into, their requests, and the loop's wake-up. */
interface Flow {
  signal: AbortSignal;
  buffer: ReorderBuffer<DocGenerations>;
  /** Requests handed to the backend and not yet answered. */
  requests: number;
  /** Wakes the stream's loop: a request or a document finished, a retry wait began or ended. */
  nudge: () => void;
}

function generatedBytes(done: DocGenerations): number {
  return done.generations.reduce((sum, generation) => sum + Buffer.byteLength(generation.text), 0);
}

/** Splits a request's completion tokens among its choices by text length (sums stay exact). */
function choiceUsage(result: CompletionResult): Usage[] {
  const lengths = result.choices.map((choice) => choice.text.length);
  const total = lengths.reduce((sum, length) => sum + length, 0);
  let given = 0;
  return lengths.map((length, position) => {
    const last = position === lengths.length - 1;
    const share = last
      ? result.usage.completionTokens - given
      : total > 0
        ? Math.floor((result.usage.completionTokens * length) / total)
        : Math.floor(result.usage.completionTokens / lengths.length);
    given += share;
    return { promptTokens: result.usage.promptTokens, completionTokens: share };
  });
}

export function generateStage(options: GenerateStageOptions): Stage<Doc, DocGenerations> {
  const { backend, recipe, journal } = options;
  const stats = options.stats ?? createGenerateStats();
  const reorderBuffer = options.reorderBuffer ?? DEFAULT_REORDER_BUFFER;
  // Read at each admission: under --concurrency auto the backend's limits move.
  const requestsWanted = () => REQUESTS_PER_SLOT * backend.concurrency;
  stats.tokens[recipe.name] = stats.tokens[recipe.name] ?? { prompt: 0, completion: 0 };
  const usage = stats.tokens[recipe.name]!;
  const longDocs = options.longDocs;
  // Refused here, before any request, when the context leaves no room for input.
  const budget = longDocs && inputBudget(recipe, longDocs.contextSize, backend.format, longDocs.tokenizer);

  async function send(
    request: CompletionRequest,
    ordinal: number,
    key: string,
    flow: Flow,
  ): Promise<JournalOutcome> {
    let result: CompletionResult;
    flow.requests += 1;
    try {
      result = await backend.complete(request, flow.signal);
    } catch (error) {
      if (!(error instanceof RequestFailedError)) throw error;
      // A failure is not journaled: a rerun sends the request again.
      return { failure: { reason: error.reason, message: error.message } };
    } finally {
      flow.requests -= 1;
      flow.nudge();
    }
    stats.requests.completed += 1;
    await journal?.append(ordinal, key, result, flow.buffer.lowestUnfinished);
    return { result };
  }

  async function call(
    doc: Doc,
    ordinal: number,
    replay: Map<string, JournalOutcome>,
    spec: RecipeCall,
    flow: Flow,
    attempt: Attempt,
  ): Promise<CallOutcome> {
    const seed = requestSeed(options.seed, doc.id, recipe.name, spec.name);
    const request: CompletionRequest = {
      label: `document ${doc.id} request ${recipe.name}:${spec.name}`,
      ...renderPrompt(spec.template, spec.slots, backend.format),
      n: spec.n,
      temperature: spec.sampling.temperature,
      topP: spec.sampling.topP,
      maxTokens: spec.sampling.maxTokens,
      seed,
      responseFormat: spec.responseFormat,
    };
    const key = requestKey(options.model, request);
    const replayed =
      replay.get(key) ?? (options.reusedAnswers ? await options.reusedAnswers.lookup(key) : undefined);
    if (replayed) stats.requests.replayed += 1;
    const outcome = replayed ?? (await send(request, ordinal, key, flow));
    if (outcome.failure && attempt.retryable && isContextLengthFailure(outcome.failure)) {
      // Not a failure yet: the document is sent again with a smaller budget.
      attempt.contextExceeded = true;
      increment(stats.retries, 'context_length');
      return { ok: false, ...outcome.failure, seed };
    }
    if (outcome.failure) {
      stats.requests.failed += 1;
      increment(stats.failures, outcome.failure.reason);
      stats.failureExamples[outcome.failure.reason] ??= outcome.failure.message;
      return { ok: false, ...outcome.failure, seed };
    }
    const { result } = outcome;
    usage.prompt += result.usage.promptTokens;
    usage.completion += result.usage.completionTokens;
    options.budget?.spend(ordinal, outputTokensOf(result, longDocs?.tokenizer ?? options.textTokenizer));
    const shares = choiceUsage(result);
    const choices: ChoiceOutcome[] = result.choices.map((choice, position) => ({
      ...choice,
      usage: shares[position]!,
    }));
    return { ok: true, choices, model: result.model, seed };
  }

  const countTokens = options.textTokenizer
    ? (value: string) => options.textTokenizer!.encode(value).length
    : undefined;

  /** A draft after post-processing (against the text it rewrites), or the filter that dropped it. */
  function clean(draft: Draft, source: string): { text: string } | { dropped: string } {
    const keywords = recipe.postprocess.minKeywordOverlap > 0 ? mainKeywords(source) : [];
    const cleaned = postprocess(draft.text, recipe.postprocess, countTokens, keywords);
    return cleaned.dropped === undefined ? { text: cleaned.text } : { dropped: cleaned.dropped };
  }

  /** Counts a generation that ended at max tokens; true when it is dropped for it. */
  function droppedAsTruncated(finishReason: string): boolean {
    if (finishReason !== 'length') return false;
    stats.truncated += 1;
    if (options.onTruncated !== 'drop') return false;
    increment(stats.filtered, 'truncated');
    return true;
  }

  /**
   * The generations of a recipe's drafts. Drafts of a segmented document are joined: generation i is the
   * cleaned generation i of each segment, in order, and is lost when one of them failed or was filtered.
   */
  function finish(doc: Doc, fitted: FittedInput, output: RecipeOutput) {
    const generations: Generation[] = [];
    let filtered = 0;
    const segmentCount = output.segments ?? 1;
    if (segmentCount === 1) {
      for (const draft of output.drafts) {
        if (droppedAsTruncated(draft.finishReason)) {
          filtered += 1;
          continue;
        }
        const cleaned = clean(draft, fitted.text);
        if ('dropped' in cleaned) {
          filtered += 1;
          increment(stats.filtered, cleaned.dropped);
          continue;
        }
        generations.push({ docId: doc.id, recipe: recipe.name, ...draft, text: cleaned.text });
      }
      return { generations, filtered, failed: output.failed };
    }
    const byIndex = new Map<number, Draft[]>();
    for (const draft of output.drafts) byIndex.set(draft.index, [...(byIndex.get(draft.index) ?? []), draft]);
    let whole = 0;
    for (const index of [...byIndex.keys()].sort((a, b) => a - b)) {
      const parts = byIndex.get(index)!.sort((a, b) => (a.segment ?? 0) - (b.segment ?? 0));
      if (parts.length < segmentCount) continue;
      whole += 1;
      const finishReason = parts.find((part) => part.finishReason === 'length')?.finishReason;
      if (droppedAsTruncated(finishReason ?? parts[0]!.finishReason)) {
        filtered += 1;
        continue;
      }
      const cleaned = parts.map((part) => clean(part, fitted.segments[part.segment ?? 0]!));
      const dropped = cleaned.find((part) => 'dropped' in part);
      if (dropped && 'dropped' in dropped) {
        filtered += 1;
        increment(stats.filtered, dropped.dropped);
        continue;
      }
      const { segment: _segment, ...first } = parts[0]!;
      generations.push({
        docId: doc.id,
        recipe: recipe.name,
        ...first,
        text: cleaned.map((part) => (part as { text: string }).text).join(SEGMENT_JOINER),
        finishReason: finishReason ?? first.finishReason,
        usage: {
          promptTokens: parts.reduce((sum, part) => sum + part.usage.promptTokens, 0),
          completionTokens: parts.reduce((sum, part) => sum + part.usage.completionTokens, 0),
        },
      });
    }
    return { generations, filtered, failed: output.skipped ? output.failed : recipe.generations - whole };
  }

  /** The recipe on a fitted document: once, or once per segment for recipes that do not read segments. */
  async function runRecipe(
    doc: Doc,
    fitted: FittedInput,
    ordinal: number,
    replay: Map<string, JournalOutcome>,
    flow: Flow,
    attempt: Attempt,
  ): Promise<RecipeOutput> {
    const context = (text: string, segments: string[], position?: number): RecipeContext => ({
      doc,
      text,
      segments,
      inputBudget: budget,
      generatorTokenizer: longDocs?.tokenizer,
      textTokenizer: options.textTokenizer,
      call: (spec) =>
        call(
          doc,
          ordinal,
          replay,
          position === undefined ? spec : { ...spec, name: segmentCallName(spec.name, position) },
          flow,
          attempt,
        ),
      countRetry: (reason) => increment(stats.retries, reason),
    });
    if (recipe.segmentsItself || fitted.segments.length === 1) {
      return recipe.run(context(fitted.text, fitted.segments));
    }
    const outputs = await Promise.all(
      fitted.segments.map(async (segment, position) => {
        const output = await recipe.run(context(segment, [segment], position));
        return output.drafts.map((draft) => ({ ...draft, segment: position }));
      }),
    );
    return { drafts: outputs.flat(), failed: 0, segments: fitted.segments.length };
  }

  /** The document fitted to `limit` tokens; undefined when --long-docs skip leaves it out. */
  function fitToBudget(
    text: string,
    limit: number | undefined,
    counters = stats.longDocs,
  ): FittedInput | undefined {
    if (!longDocs || limit === undefined) return { text, segments: [text] };
    return fitInput(text, longDocs.mode, limit, longDocs.tokenizer, counters);
  }

  async function processDoc(
    doc: Doc,
    ordinal: number,
    replay: Map<string, JournalOutcome>,
    flow: Flow,
  ): Promise<DocGenerations> {
    let text = doc.text;
    if (options.maxInputTokens && options.textTokenizer) {
      const cut = cutAtLineBoundary(text, options.maxInputTokens, options.textTokenizer);
      if (cut.cut) stats.inputsCut += 1;
      text = cut.text;
    }
    let fitted = fitToBudget(text, budget);
    const attempt: Attempt = { retryable: budget !== undefined, contextExceeded: false };
    let output = fitted && (await runRecipe(doc, fitted, ordinal, replay, flow, attempt));
    if (attempt.contextExceeded && budget !== undefined) {
      // The server counted more tokens than the estimate: once more with half the budget, then it counts.
      stats.longDocs.retriedSmaller += 1;
      fitted = fitToBudget(text, Math.floor(budget / 2), createLongDocsCounters());
      output =
        fitted && (await runRecipe(doc, fitted, ordinal, replay, flow, { ...attempt, retryable: false }));
    }
    if (!fitted || !output) return { doc, generations: [], failed: 0, filtered: 0, skipped: 'too_long' };
    const { generations, filtered, failed } = finish(doc, fitted, output);
    return {
      doc,
      generations,
      failed,
      filtered,
      ...(output.skipped ? { skipped: output.skipped } : {}),
    };
  }

  async function* ordered(docs: AsyncIterator<Doc>): AsyncGenerator<DocGenerations> {
    // Per stream: its own requests to stop when it closes early or one of them fails for all.
    const controller = new AbortController();
    options.signal?.addEventListener('abort', () => controller.abort(options.signal?.reason), { once: true });
    const signal = controller.signal;
    // Requests waiting for a retry or an endpoint listen to this signal: many listeners are expected.
    setMaxListeners(0, signal);
    let wake: (() => void) | undefined;
    const flow: Flow = {
      signal,
      buffer: new ReorderBuffer(),
      requests: 0,
      nudge: () => {
        const resolve = wake;
        wake = undefined;
        resolve?.();
      },
    };
    const { buffer } = flow;
    const { budget } = options;
    const retryWaits = backend.retryWaits;
    const unwatch = retryWaits?.watch(flow.nudge);
    const wanting = () => flow.requests - (retryWaits?.value ?? 0);
    let failure: { error: unknown } | undefined;
    let exhausted = false;
    let finished = false;

    const admit = async (doc: Doc) => {
      const ordinal = buffer.admit(Buffer.byteLength(doc.text));
      budget?.admitted(ordinal);
      const replay = journal ? await journal.replay(ordinal) : new Map<string, JournalOutcome>();
      processDoc(doc, ordinal, replay, flow).then(
        (done) => {
          budget?.finished(ordinal);
          buffer.finish(ordinal, done, generatedBytes(done));
          flow.nudge();
        },
        (error: unknown) => {
          // A failure that is not one request's own (bad credentials, journal I/O) stops everything at once.
          failure ??= { error };
          controller.abort(error);
          flow.nudge();
        },
      );
    };

    try {
      while (true) {
        if (failure) throw failure.error;
        // Admit a document while the backend could use more requests and the buffer has room (always one); none
        // while a finished one waits at `yield` for the consumer, so a slow consumer slows the requests.
        const admitting =
          !exhausted && (buffer.size === 0 || (buffer.bytes < reorderBuffer && wanting() < requestsWanted()));
        if (admitting) {
          const next = await docs.next();
          if (next.done) exhausted = true;
          else if (budget && !budget.mayAdmit()) {
            // The budget is spent: no new document; those started finish (and are journaled).
            budget.leftOut();
            exhausted = true;
          } else await admit(next.value);
        }
        const done = buffer.take();
        // A document past the budget's cut (in input order) finished for a later run: not output.
        if (done && budget && !budget.keep()) continue;
        if (done) {
          stats.documents += 1;
          stats.generations += done.generations.length;
          if (done.skipped) increment(stats.skipped, done.skipped);
          yield done;
        } else if (exhausted && buffer.size === 0) {
          finished = true;
          return;
        } else if (!admitting) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      }
    } finally {
      unwatch?.();
      // Closed early (an error, or a consumer that stopped): stop the requests still in flight.
      if (!finished && !signal.aborted) controller.abort(new Error('the generate stage was closed'));
      await docs.return?.();
    }
  }

  return (input) => fromAsyncIterable(ordered(toAsyncIterable(input)));
}

/** The flat output record of one generation (the `generate` command's jsonl.zst), snake_case as documented. */
export function generationRecord(generation: Generation): Record<string, unknown> {
  return {
    doc_id: generation.docId,
    recipe: generation.recipe,
    style: generation.style ?? null,
    index: generation.index,
    text: generation.text,
    finish_reason: generation.finishReason,
    usage: generation.usage
      ? { prompt_tokens: generation.usage.promptTokens, completion_tokens: generation.usage.completionTokens }
      : null,
    model: generation.model,
    seed: generation.seed,
    ...(generation.genre === undefined ? {} : { genre: generation.genre, audience: generation.audience }),
    ...(generation.split === undefined
      ? {}
      : { split: generation.split, split_offset: generation.splitOffset }),
  };
}
