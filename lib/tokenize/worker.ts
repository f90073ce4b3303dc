// A tokenizer worker thread: loads one encoder, then encodes batches of texts into one Uint32Array each,
// which it transfers back (no copy). Its protocol is defined in pool.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { MegadocsError, messageOf } from '../errors.js';
import { loadEncoder } from './encoders.js';
import { MAX_IDS_PER_UNIT } from './piece-encoder.js';
import type { BatchReply, BatchRequest, SerializedError, WorkerSettings } from './pool.js';

const settings = workerData as WorkerSettings;
const port = parentPort!;

function serialize(error: unknown): SerializedError {
  if (error instanceof MegadocsError) return { code: error.code, message: error.message };
  return { code: 'TOKENIZER', message: messageOf(error) };
}

try {
  const encoder = await loadEncoder(settings.tokenizer);
  const bos = settings.bos ? encoder.bosId : undefined;
  const eos = settings.eos ? encoder.eosId : undefined;
  port.postMessage({ type: 'ready' } satisfies BatchReply);
  // Reused for every batch, so encoding allocates nothing per token; each reply is a right-sized copy.
  let scratch = new Uint32Array(0);
  port.on('message', ({ id, texts }: BatchRequest) => {
    try {
      const room = texts.reduce((sum, text) => sum + text.length * MAX_IDS_PER_UNIT + 2, 0);
      if (scratch.length < room) scratch = new Uint32Array(room);
      const ends = new Uint32Array(texts.length);
      let at = 0;
      texts.forEach((text, index) => {
        if (bos !== undefined) scratch[at++] = bos;
        at = encoder.encodeInto(text, scratch, at);
        if (eos !== undefined) scratch[at++] = eos;
        ends[index] = at;
      });
      const tokens = scratch.slice(0, at);
      const reply: BatchReply = { type: 'batch', id, tokens, ends };
      port.postMessage(reply, [tokens.buffer, ends.buffer]);
    } catch (error) {
      port.postMessage({ type: 'batch-failed', id, error: serialize(error) } satisfies BatchReply);
    }
  });
} catch (error) {
  port.postMessage({ type: 'load-failed', error: serialize(error) } satisfies BatchReply);
}
