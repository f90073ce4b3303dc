// The data that flows between stages, as plain objects, and the Stage type that connects them.
// Every stage is a function from a highland stream to a highland stream (ARCHITECTURE.md).
/// <reference types="highland" />

/** A source document: what a source yields and what generation reads. */
export interface Doc {
  /** Stable key of the document: the id field, or `FILE:ROW` when the input has none. */
  id: string;
  text: string;
  /** Other fields of the input record, and where it came from. */
  meta?: Record<string, unknown>;
}

/** Token usage reported by an LLM server for one request. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** One LLM output, tagged with the key of the document it was made from. */
export interface Generation {
  docId: string;
  recipe: string;
  style?: string;
  /** Index of this generation among the document's generations (0-based). */
  index: number;
  text: string;
  finishReason: string;
  usage?: Usage;
  model: string;
  seed: number;
  genre?: string;
  audience?: string;
  /** For stretch: the split point (1..G) this rationale belongs after. */
  split?: number;
  /** For stretch: where split `split` is in the document text (a JavaScript string index, UTF-16 units). */
  splitOffset?: number;
}

/** A document after tokenization: its ids with EOS/BOS already appended. */
export interface TokenizedDoc {
  id: string;
  /** May be a view into a buffer shared with other documents (tokenizeStage): slice() it to keep it long. */
  tokens: Uint32Array;
}

/** One packed training sample of exactly seqLen tokens (shorter only for `--tail keep`). */
export interface Sequence {
  tokens: Uint32Array;
  /** Offsets inside `tokens` where a document starts (present with `--boundaries`). */
  boundaries?: Uint32Array;
}

/** A stage of the pipeline: stream in, stream out, composed with `.through(stage)`. */
export type Stage<A, B> = (input: Highland.Stream<A>) => Highland.Stream<B>;
