// The seam between the generation engine and whatever runs the model: one completion request in,
// its choices out. The OpenAI-compatible HTTP client implements it; an embedded model can too.

import { MegadocsError } from '../errors.js';
import type { Gauge } from '../generate/gauge.js';
import type { TextTokenizer } from '../generate/input.js';
import type { Usage } from '../types.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** How a backend takes prompts: chat messages (instruct models) or plain text (base models). */
export type PromptFormat = 'chat' | 'text';

/** One completion request, independent of the wire format. */
export interface CompletionRequest {
  /** Names the request in errors: `DOC_ID request NAME`. */
  label: string;
  /** The prompt as chat messages, for a backend of format `chat`. */
  messages?: ChatMessage[];
  /** The prompt as plain text, for a backend of format `text`. */
  prompt?: string;
  /** Samples wanted from this one prompt. */
  n: number;
  temperature?: number;
  topP?: number;
  /** New tokens per sample. */
  maxTokens?: number;
  seed: number;
  /** Ask the server for a JSON object (OpenAI `response_format`). */
  responseFormat?: 'json_object';
}

export interface CompletionChoice {
  text: string;
  /** `stop`, `length`, ... as the server reported it. */
  finishReason: string;
}

export interface CompletionResult {
  /** Exactly `n` choices, in the server's index order. */
  choices: CompletionChoice[];
  usage: Usage;
  /** The model that answered (the server's name for it). */
  model: string;
}

/** Runs completion requests; `concurrency` is how many it keeps in flight at most now (it may move: auto). */
export interface LlmBackend {
  readonly concurrency: number;
  /** Which form of the prompt `complete` reads. */
  readonly format: PromptFormat;
  /** The model requests are answered by (--model, the one the server lists, or the local model's name). */
  readonly model: string;
  /** Tokens the model holds per request, prompt and output together, when the backend knows it. */
  readonly contextSize?: number;
  /** The model's own tokenizer, when it runs here (a `local:` model). */
  readonly tokenizer?: TextTokenizer;
  complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult>;
  close(): Promise<void>;
  /** Requests waiting out a retry backoff now (they hold none of the `concurrency` slots meanwhile). */
  readonly retryWaits?: Gauge;
}

/**
 * A request that failed for a reason of its own: a rejection by the server (`definitive`: the same
 * request fails again, told to library callers) or retries exhausted. Neither is journaled: a rerun sends
 * the request again.
 * Anything else a backend throws stops the run.
 */
export class RequestFailedError extends MegadocsError {
  constructor(
    message: string,
    readonly reason: string,
    readonly definitive: boolean,
    where: string,
  ) {
    super('LLM', message, { where });
  }
}
