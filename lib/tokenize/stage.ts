// The tokenize stage: Doc -> TokenizedDoc in input order, on a worker pool (or the main thread with
// workers 0), batching texts so message overhead stays small and reading only a bounded window ahead.
import { fromAsyncIterable, toAsyncIterable } from '../stream.js';
import type { Doc, Stage, TokenizedDoc } from '../types.js';
import { documentBosId, loadEncoder, localTokenizerSpec, tokenizerFacts } from './encoders.js';
import { type EncodedBatch, TokenizerPool } from './pool.js';
import type { CacheDir } from './table-cache.js';
import { documentRoom, encodeDocument } from './token-tables.js';

export interface TokenizeOptions {
  /** An encoder spec (see loadEncoder). */
  tokenizer: string;
  /** Worker threads; 0 encodes on the main thread. */
  workers: number;
  /** Append the EOS id to every document. */
  eos: boolean;
  /** The EOS token (--eos-token) instead of the model's: one of its special or added tokens. */
  eosToken?: string;
  /** Prepend the BOS id to every document, for encodings that have one; absent: as the model does by default. */
  bos?: boolean;
  /** Where the workers' lookup tables are cached (see CacheDir: default ~/.cache/megadocs; false: not cached). */
  cacheDir?: CacheDir;
}

/** A batch is closed at this many UTF-16 units of text or this many documents, whichever comes first. */
const BATCH_MAX_CHARS = 256 * 1024;
const BATCH_MAX_DOCS = 512;
/** Batches in flight per worker: enough to keep each busy while the oldest batch is awaited. */
const BATCHES_IN_FLIGHT_PER_WORKER = 3;

export function tokenizeStage(options: TokenizeOptions): Stage<Doc, TokenizedDoc> {
  return (input) =>
    fromAsyncIterable(
      options.workers === 0 ? encodeOnMainThread(input, options) : encodeOnPool(input, options),
    );
}

async function* encodeOnMainThread(input: Highland.Stream<Doc>, options: TokenizeOptions) {
  const encoder = await loadEncoder(options.tokenizer, options.eosToken);
  const bos = documentBosId(options.bos, encoder);
  const eos = options.eos ? encoder.eosId : undefined;
  for await (const doc of toAsyncIterable(input)) {
    const ids = new Uint32Array(documentRoom(doc.text));
    const at = encodeDocument(encoder, doc.text, ids, 0, bos, eos);
    yield { ...labelOf(doc), tokens: ids.slice(0, at) } satisfies TokenizedDoc;
  }
}

/** What a tokenized document keeps of its source document: the id, and the streams when it has them. */
function labelOf(doc: Doc): Omit<TokenizedDoc, 'tokens'> {
  return doc.streams ? { id: doc.id, streams: doc.streams } : { id: doc.id };
}

interface BatchInFlight {
  labels: Array<Omit<TokenizedDoc, 'tokens'>>;
  result: Promise<EncodedBatch>;
}

async function* encodeOnPool(input: Highland.Stream<Doc>, options: TokenizeOptions) {
  // The workers get the EOS id: resolving --eos-token needs the token names, which their tables do not hold.
  const eosId =
    options.eosToken === undefined
      ? undefined
      : (await tokenizerFacts(options.tokenizer, options.eosToken, options.cacheDir)).eosId;
  // A worker thread has no Hub options: it loads an hf: tokenizer from where this thread downloaded it.
  const pool = new TokenizerPool({
    ...options,
    tokenizer: await localTokenizerSpec(options.tokenizer),
    eosId,
  });
  const window: BatchInFlight[] = [];
  try {
    for await (const batch of batches(toAsyncIterable(input))) {
      const result = pool.encode(batch.map((doc) => doc.text));
      // Awaited in order below; this only keeps a failure from being reported as unhandled meanwhile.
      result.catch(() => {});
      window.push({ labels: batch.map(labelOf), result });
      if (window.length >= pool.size * BATCHES_IN_FLIGHT_PER_WORKER) yield* splitBatch(window.shift()!);
    }
    while (window.length > 0) yield* splitBatch(window.shift()!);
    // With an empty input nothing was encoded: a tokenizer that cannot load must still fail the stream.
    await pool.ready();
  } finally {
    await pool.close();
  }
}

async function* batches(docs: AsyncIterable<Doc>): AsyncGenerator<Doc[]> {
  let batch: Doc[] = [];
  let chars = 0;
  for await (const doc of docs) {
    batch.push(doc);
    chars += doc.text.length;
    if (chars >= BATCH_MAX_CHARS || batch.length >= BATCH_MAX_DOCS) {
      yield batch;
      batch = [];
      chars = 0;
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * One TokenizedDoc per text, each a view into the batch's buffer: no copy and no allocation per document (a
 * consumer that keeps a document for long should copy its tokens, or it keeps the whole batch alive).
 */
async function* splitBatch({ labels, result }: BatchInFlight): AsyncGenerator<TokenizedDoc> {
  const { tokens, ends } = await result;
  let start = 0;
  for (let index = 0; index < labels.length; index++) {
    yield { ...labels[index]!, tokens: tokens.subarray(start, ends[index]) };
    start = ends[index]!;
  }
}
