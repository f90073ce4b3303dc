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
  /** Which output stream(s) it goes to, where a command writes several (`run`: a megadoc's parts). */
  streams?: readonly StreamName[];
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

/** The two streams of a run: the source documents as they came in, and what generation and assembly made. */
export type StreamName = 'real' | 'synthetic';
export const STREAM_NAMES: readonly StreamName[] = ['real', 'synthetic'];

/** One source document with everything generated from it (emitted once all its requests are settled). */
export interface DocGenerations {
  doc: Doc;
  /** Kept generations, by index. */
  generations: Generation[];
  /** Generations lost because their request failed. */
  failed: number;
  /** Generations dropped by post-processing or `--on-truncated drop`. */
  filtered: number;
  /** Why the document produced nothing at all, when a whole stage failed. */
  skipped?: string;
}

/** A training document: its parts are tokenized separately (each ending with EOS) and stay contiguous. */
export interface Megadoc {
  stream: StreamName;
  /** The source document's id; `ID#INDEX` / `ID#original` for the separate documents of `none`. */
  id: string;
  parts: string[];
}

/** A document after tokenization: its ids with EOS/BOS already appended. */
export interface TokenizedDoc {
  id: string;
  /** The document's `streams`, carried through tokenization. */
  streams?: readonly StreamName[];
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
