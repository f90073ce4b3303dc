// The zstd compression worker thread: the engine it is started with (zstd-engines.ts), one streaming frame at a
// time, fed piece by piece; each request is answered with the compressed bytes it produced (transferred).
// Protocol in zstd-compress.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { messageOf } from '../errors.js';
import { serveMessages } from '../worker-entry.js';
import type { CompressReply, CompressRequest, CompressWorkerSettings } from './zstd-compress.js';
import { type FrameEngine, loadZstdEngine } from './zstd-engines.js';

const engine = await loadZstdEngine((workerData as CompressWorkerSettings).engine);
const port = parentPort!;
let frame: FrameEngine | undefined;

/** Runs one step of the frame being compressed, returning its outputs. */
function step(request: CompressRequest): Uint8Array[] {
  const outputs: Uint8Array[] = [];
  const collect = (output: Uint8Array) => outputs.push(output);
  if (request.type === 'begin') {
    frame?.delete();
    frame = undefined;
    frame = engine.begin(request.level);
    return outputs;
  }
  if (!frame) throw new Error(`"${request.type}" without a frame in progress`);
  if (request.type === 'piece') {
    frame.transform(request.piece, collect);
    return outputs;
  }
  try {
    frame.end(collect);
  } finally {
    frame.delete();
    frame = undefined;
  }
  return outputs;
}

serveMessages(port, (request: CompressRequest) => {
  try {
    const outputs = step(request);
    const spent = request.type === 'piece' ? (request.piece.buffer as ArrayBuffer) : undefined;
    const transfer = outputs.map((output) => output.buffer as ArrayBuffer);
    if (spent) transfer.push(spent);
    port.postMessage({ type: 'output', outputs, spent } satisfies CompressReply, transfer);
  } catch (error) {
    // zstd-codec throws strings (an aborted wasm instance stays dead): the caller retires this worker.
    port.postMessage({ type: 'failed', error: messageOf(error) } satisfies CompressReply);
  }
});
