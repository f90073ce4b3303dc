// The spending budget of a run (`--max-output-tokens`, `--max-documents`): which documents may still start, and
// where the output is cut: after the first documents in input order that reach it, whatever order answers came in.
import type { CompletionResult } from '../backends/backend.js';
import type { TextTokenizer } from './input.js';
import { BYTE_TOKENIZER } from './long-docs.js';

export type BudgetLimits = {
  /** Completion tokens (the servers' usage) of the documents kept. */
  maxOutputTokens?: number;
  /** Source documents kept. */
  maxDocuments?: number;
};

/** How a run stopped at its budget (megadocs.json `budget`, status `budget-reached`). */
export type BudgetStop = {
  reason: 'max-output-tokens' | 'max-documents';
  limits: BudgetLimits;
  /** Documents kept: the output holds these, the first in input order. */
  documents: number;
  /** Completion tokens of the documents kept. */
  outputTokens: number;
};

/**
 * A request's completion tokens: the server's usage, or, when it reports none for a non-empty answer, the text
 * counted with `tokenizer` (one token per byte without one: never fewer than the model's).
 */
export function outputTokensOf(result: CompletionResult, tokenizer: TextTokenizer = BYTE_TOKENIZER): number {
  if (result.usage.completionTokens > 0) return result.usage.completionTokens;
  return result.choices.reduce((sum, choice) => sum + tokenizer.encode(choice.text).length, 0);
}

/**
 * Documents are admitted in input order and finish in any order; `keep` is asked in input order. A new document is
 * admitted while fewer than maxDocuments are and the finished ones spent under maxOutputTokens. The cut: document
 * k is kept when the documents before it spent under maxOutputTokens (and k < maxDocuments). Admitted documents
 * past the cut still finish (their answers are journaled for a rerun with a larger budget) but are not kept.
 */
export class GenerationBudget {
  private readonly spent = new Map<number, number>();
  private admittedCount = 0;
  private finishedTokens = 0;
  private takenCount = 0;
  private keptCount = 0;
  private keptTokens = 0;
  private cut: BudgetStop['reason'] | undefined;
  private leftOutAny = false;

  constructor(readonly limits: BudgetLimits) {}

  /** Whether another document may be started. */
  mayAdmit(): boolean {
    const { maxDocuments, maxOutputTokens } = this.limits;
    if (maxDocuments !== undefined && this.admittedCount >= maxDocuments) return false;
    return maxOutputTokens === undefined || this.finishedTokens < maxOutputTokens;
  }

  admitted(ordinal: number): void {
    this.admittedCount += 1;
    this.spent.set(ordinal, 0);
  }

  /** Adds a request's completion tokens to its document. */
  spend(ordinal: number, tokens: number): void {
    this.spent.set(ordinal, (this.spent.get(ordinal) ?? 0) + tokens);
  }

  finished(ordinal: number): void {
    this.finishedTokens += this.spent.get(ordinal) ?? 0;
  }

  /** A document was not started for the budget: the input held more. */
  leftOut(): void {
    this.leftOutAny = true;
  }

  /** Asked for each finished document in input order: whether it is within the budget (then it is output). */
  keep(): boolean {
    const ordinal = this.takenCount++;
    const tokens = this.spent.get(ordinal) ?? 0;
    this.spent.delete(ordinal);
    if (this.cut) {
      this.leftOutAny = true;
      return false;
    }
    this.keptCount += 1;
    this.keptTokens += tokens;
    const { maxDocuments, maxOutputTokens } = this.limits;
    if (maxOutputTokens !== undefined && this.keptTokens >= maxOutputTokens) this.cut = 'max-output-tokens';
    else if (maxDocuments !== undefined && this.keptCount >= maxDocuments) this.cut = 'max-documents';
    return true;
  }

  /** How the run stopped at its budget; undefined when it kept every document of its input. */
  get reached(): BudgetStop | undefined {
    if (!this.leftOutAny || !this.cut) return undefined;
    return {
      reason: this.cut,
      limits: this.limits,
      documents: this.keptCount,
      outputTokens: this.keptTokens,
    };
  }
}

/** The budget of a config, or undefined when it sets none. */
export function budgetFor(config: BudgetLimits): GenerationBudget | undefined {
  const limits: BudgetLimits = {
    ...(config.maxOutputTokens !== undefined && { maxOutputTokens: config.maxOutputTokens }),
    ...(config.maxDocuments !== undefined && { maxDocuments: config.maxDocuments }),
  };
  return Object.keys(limits).length > 0 ? new GenerationBudget(limits) : undefined;
}
