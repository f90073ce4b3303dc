// The zstd compression worker thread: one zstd-codec instance, one streaming frame at a time, fed piece by
// piece; each request is answered with the compressed bytes it produced (transferred). Protocol in zstd-compress.ts.
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import { messageOf } from '../errors.js';
import type { CompressReply, CompressRequest } from './zstd-compress.js';

interface CompressStreamBinding {
  begin(level: number): boolean;
  transform(piece: Uint8Array, onOutput: (output: Uint8Array) => void): boolean;
  end(onOutput: (output: Uint8Array) => void): boolean;
  delete(): void;
}
interface ZstdBinding {
  ZstdCompressStreamBinding: new () => CompressStreamBinding;
}

const require = createRequire(import.meta.url);
const { run } = require('zstd-codec/lib/module.js') as { run(onReady: (binding: ZstdBinding) => void): void };
// The Emscripten module has a `then` of its own: resolving a promise with it directly never settles.
const { binding } = await new Promise<{ binding: ZstdBinding }>((resolve) =>
  run((module) => resolve({ binding: module })),
);
const port = parentPort!;
let frame: CompressStreamBinding | undefined;

/** Runs one step of the frame being compressed, returning its outputs (zstd-codec hands each in its own buffer). */
function step(request: CompressRequest): Uint8Array[] {
  const outputs: Uint8Array[] = [];
  const collect = (output: Uint8Array) => {
    if (output.length === 0) return;
    outputs.push(output.byteLength === output.buffer.byteLength ? output : output.slice());
  };
  if (request.type === 'begin') {
    frame?.delete();
    frame = new binding.ZstdCompressStreamBinding();
    if (!frame.begin(request.level))
      throw new Error(`zstd-codec could not start a frame at level ${request.level}`);
    return outputs;
  }
  if (!frame) throw new Error(`"${request.type}" without a frame in progress`);
  if (request.type === 'piece') {
    if (!frame.transform(request.piece, collect)) throw new Error('zstd-codec failed on a piece of input');
    return outputs;
  }
  const ended = request.type === 'end' && frame.end(collect);
  frame.delete();
  frame = undefined;
  if (request.type === 'end' && !ended) throw new Error('zstd-codec failed to end the frame');
  return outputs;
}

port.on('message', (request: CompressRequest) => {
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
