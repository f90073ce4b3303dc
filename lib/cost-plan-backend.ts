// The backend `megadocs plan` runs the real generate stage on: it sends nothing, answers every request at once with
// the output tokens a request is expected to take, and counts the requests, samples and prompt tokens it was given.
import type { CompletionRequest, CompletionResult, LlmBackend, PromptFormat } from './backends/backend.js';
import type { TextTokenizer } from './generate/input.js';
import { MAGA_PAIRS } from './generate/recipes/maga.js';

/**
 * What the expected output tokens are made of (stated in the plan). A rewrite (rephrase, a MAGA rewrite) is
 * `rewriteRatio` of its prompt's tokens, at most max_tokens: the megadocs paper's generations averaged 708 tokens
 * for 1,243-token documents (0.57). A stretch rationale is `rationaleShare` of max_tokens (708 of 1,024: 0.69).
 * MAGA's stage 1 (the 5 genre/audience pairs) takes `pairsTokens`, at most max_tokens.
 */
export interface OutputAssumptions {
  rewriteRatio: number;
  rationaleShare: number;
  pairsTokens: number;
}

export const DEFAULT_ASSUMPTIONS: OutputAssumptions = {
  rewriteRatio: 0.57,
  rationaleShare: 0.69,
  pairsTokens: 450,
};
/** max_tokens of a request that sets none (a custom recipe without it). */
const UNSET_MAX_TOKENS = 1024;

export interface PlannedRequests {
  requests: number;
  /** Samples asked (the sum of `n`). */
  samples: number;
  promptTokens: number;
  outputTokens: number;
}

/** A stage-1 answer MAGA accepts, so that the plan counts its rewrites. */
const PAIRS_ANSWER = JSON.stringify(
  Object.fromEntries(
    Array.from({ length: MAGA_PAIRS }, (_, i) => [
      [`genre_${i + 1}`, 'planned genre'],
      [`audience_${i + 1}`, 'planned audience'],
    ]).flat(),
  ),
);

function promptText(request: CompletionRequest): string {
  return request.prompt ?? (request.messages ?? []).map((message) => message.content).join('\n');
}

export class PlanningBackend implements LlmBackend {
  readonly counts: PlannedRequests = { requests: 0, samples: 0, promptTokens: 0, outputTokens: 0 };

  constructor(
    readonly format: PromptFormat,
    readonly model: string,
    /** Counts prompt tokens (the generator's tokenizer, or the dataset's). */
    private readonly promptTokenizer: TextTokenizer,
    private readonly assumptions: OutputAssumptions,
    readonly contextSize?: number,
    readonly concurrency = 64,
  ) {}

  /** The expected completion tokens of one sample of `request`, given its prompt's tokens. */
  private expectedTokens(request: CompletionRequest, promptTokens: number): number {
    const maxTokens = request.maxTokens ?? UNSET_MAX_TOKENS;
    if (/:pairs:\d+(#s\d+)?$/.test(request.label) || request.responseFormat === 'json_object')
      return Math.min(maxTokens, this.assumptions.pairsTokens);
    if (/:split:\d+(#s\d+)?$/.test(request.label))
      return Math.round(maxTokens * this.assumptions.rationaleShare);
    return Math.min(maxTokens, Math.round(promptTokens * this.assumptions.rewriteRatio));
  }

  async complete(request: CompletionRequest): Promise<CompletionResult> {
    const promptTokens = this.promptTokenizer.encode(promptText(request)).length;
    const perSample = this.expectedTokens(request, promptTokens);
    this.counts.requests += 1;
    this.counts.samples += request.n;
    this.counts.promptTokens += promptTokens;
    this.counts.outputTokens += perSample * request.n;
    const text =
      request.responseFormat === 'json_object' || /:pairs:/.test(request.label) ? PAIRS_ANSWER : 'planned';
    return {
      choices: Array.from({ length: request.n }, () => ({ text, finishReason: 'stop' })),
      usage: { promptTokens, completionTokens: perSample * request.n },
      model: this.model,
    };
  }

  async close(): Promise<void> {}
}
