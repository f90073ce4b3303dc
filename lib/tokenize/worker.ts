// A tokenizer worker thread, in one of two roles. `tables`: loads the encoding's rank table, builds its lookup
// tables in shared memory, posts them and exits. `encode`: waits for those tables (batches that come first
// wait too), then encodes batches of texts into one Uint32Array each, transferred back (no copy). Its
// protocol is defined in pool.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { MegadocsError, messageOf } from '../errors.js';
import { serveMessages } from '../worker-entry.js';
import { documentBosId, loadTokenTables } from './encoders.js';
import type { BatchReply, SerializedError, WorkerMessage, WorkerSettings } from './pool.js';
import { documentRoom, encodeDocument, type IdEncoder, idEncoder, type TokenTables } from './token-tables.js';

const settings = workerData as WorkerSettings;
const port = parentPort!;

function serialize(error: unknown): SerializedError {
  if (error instanceof MegadocsError) return { code: error.code, message: error.message };
  return { code: 'TOKENIZER', message: messageOf(error) };
}

async function buildTables(): Promise<void> {
  try {
    port.postMessage({
      type: 'tables',
      tables: await loadTokenTables(settings.tokenizer, settings.cacheDir),
    } satisfies BatchReply);
  } catch (error) {
    port.postMessage({ type: 'load-failed', error: serialize(error) } satisfies BatchReply);
  }
}

function encodeBatches(): void {
  let signalTables!: (tables: TokenTables) => void;
  const encoder = new Promise<IdEncoder>((resolve) => {
    signalTables = (tables) => resolve(idEncoder(tables));
  });
  // Reused for every batch, so encoding allocates nothing per token; each reply is a right-sized copy.
  let scratch = new Uint32Array(0);
  const encodeBatch = (ready: IdEncoder, id: number, texts: string[]) => {
    const bos = documentBosId(settings.bos, ready);
    const eos = settings.eos ? (settings.eosId ?? ready.eosId) : undefined;
    const room = texts.reduce((sum, text) => sum + documentRoom(text), 0);
    if (scratch.length < room) scratch = new Uint32Array(room);
    const ends = new Uint32Array(texts.length);
    let at = 0;
    texts.forEach((text, index) => {
      at = encodeDocument(ready, text, scratch, at, bos, eos);
      ends[index] = at;
    });
    const tokens = scratch.slice(0, at);
    port.postMessage({ type: 'batch', id, tokens, ends } satisfies BatchReply, [tokens.buffer, ends.buffer]);
  };
  serveMessages(port, async (message: WorkerMessage) => {
    if (message.type === 'tables') {
      try {
        signalTables(message.tables);
        await encoder;
        port.postMessage({ type: 'ready' } satisfies BatchReply);
      } catch (error) {
        port.postMessage({ type: 'load-failed', error: serialize(error) } satisfies BatchReply);
      }
      return;
    }
    try {
      encodeBatch(await encoder, message.id, message.texts);
    } catch (error) {
      port.postMessage({
        type: 'batch-failed',
        id: message.id,
        error: serialize(error),
      } satisfies BatchReply);
    }
  });
}

if (settings.role === 'tables') {
  // Listening lets a pool closed during the load stop this thread gracefully; done, it closes the port itself.
  serveMessages(port, () => undefined);
  await buildTables();
  port.close();
} else encodeBatches();
