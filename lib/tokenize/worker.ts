// A tokenizer worker thread: loads one encoder, then encodes batches of texts into one Uint32Array each,
// which it transfers back (no copy). Its protocol is defined in pool.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { MegadocsError, messageOf } from '../errors.js';
import { loadEncoder } from './encoders.js';
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
  port.on('message', ({ id, texts }: BatchRequest) => {
    try {
      const encoded = texts.map((text) => encoder.encode(text));
      const extra = (bos === undefined ? 0 : 1) + (eos === undefined ? 0 : 1);
      const ends = new Uint32Array(texts.length);
      const tokens = new Uint32Array(encoded.reduce((sum, ids) => sum + ids.length + extra, 0));
      let offset = 0;
      encoded.forEach((ids, index) => {
        if (bos !== undefined) tokens[offset++] = bos;
        tokens.set(ids, offset);
        offset += ids.length;
        if (eos !== undefined) tokens[offset++] = eos;
        ends[index] = offset;
      });
      const reply: BatchReply = { type: 'batch', id, tokens, ends };
      port.postMessage(reply, [tokens.buffer, ends.buffer]);
    } catch (error) {
      port.postMessage({ type: 'batch-failed', id, error: serialize(error) } satisfies BatchReply);
    }
  });
} catch (error) {
  port.postMessage({ type: 'load-failed', error: serialize(error) } satisfies BatchReply);
}
