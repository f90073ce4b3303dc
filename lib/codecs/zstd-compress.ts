// zstd compression into ONE frame that declares its content size, streamed in bounded pieces through zstd-codec
// on a worker thread: the caller keeps working, and neither side ever holds the whole input or output.
import type { Worker } from 'node:worker_threads';
import { MegadocsError, messageOf } from '../errors.js';
import { startWorker } from '../worker-entry.js';
import { withFrameContentSize, ZSTD_FRAME_HEADER_MAX_BYTES } from './zstd-frame.js';

/**
 * Levels zstd-codec 0.1.5 can run: its wasm heap is fixed at 16 MiB (the module declares that maximum),
 * and level 10 and above need bigger match tables, so they abort with OOM at any input size.
 */
export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 9;
export const ZSTD_DEFAULT_LEVEL = 3;

/** Input goes to the worker (and into its wasm heap) in pieces of at most this size. */
export const ZSTD_PIECE_BYTES = 1 << 20;

/** Throws a BAD_OPTION error naming the accepted levels unless `level` is one zstd-codec can run. */
export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new MegadocsError('BAD_OPTION', `zstd level ${level} is not supported`, {
      where: 'compression',
      hint: `Use a level from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL} (zstd-codec's fixed 16 MiB wasm heap runs out of memory at level 10 and above)`,
    });
  }
}

/** What the worker is asked, one frame at a time: start a frame, compress a piece, end the frame. */
export type CompressRequest =
  | { type: 'begin'; level: number }
  | { type: 'piece'; piece: Uint8Array }
  | { type: 'end' };

/**
 * Its answer to each request, in order: the compressed bytes that request produced (and a piece's buffer, handed
 * back to be refilled: buffers go back and forth instead of piling up as garbage on either thread), or why it failed.
 */
export type CompressReply =
  | { type: 'output'; outputs: Uint8Array[]; spent?: ArrayBuffer }
  | { type: 'failed'; error: string };

interface Waiting {
  resolve: (outputs: Uint8Array[]) => void;
  reject: (error: Error) => void;
}

/**
 * The compression thread: one frame at a time (two frames at level 9 would not fit zstd-codec's 16 MiB heap),
 * requests answered in order. Kept alive only while a request is in flight; a failed worker is retired (an
 * aborted zstd-codec instance stays dead) and the next frame starts a new one.
 */
class CompressionWorker {
  private readonly worker: Worker;
  private readonly waiting: Waiting[] = [];
  /** Piece buffers handed back by the worker, ready to be refilled. */
  private readonly spare: ArrayBuffer[] = [];
  private turn: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor() {
    this.worker = startWorker(import.meta.url, 'zstd-worker');
    this.worker.unref();
    this.worker.on('message', (reply: CompressReply) => {
      const waiting = this.waiting.shift();
      if (this.waiting.length === 0) this.worker.unref();
      if (reply.type === 'output') {
        if (reply.spent && this.spare.length < 2) this.spare.push(reply.spent);
        waiting?.resolve(reply.outputs);
      } else this.retire(new Error(reply.error), waiting);
    });
    this.worker.on('error', (error) => this.retire(error));
    this.worker.on('exit', (code) =>
      this.retire(new Error(`the compression worker exited with code ${code}`)),
    );
  }

  /** Waits until the frame before is done; resolves to the call that lets the next frame start. */
  async acquire(): Promise<() => void> {
    const before = this.turn;
    let release!: () => void;
    this.turn = new Promise((resolve) => {
      release = resolve;
    });
    await before;
    return release;
  }

  /** Sends a copy of `input` (at most ZSTD_PIECE_BYTES) to be compressed, in a buffer the worker hands back. */
  piece(input: Uint8Array): Promise<Uint8Array[]> {
    const buffer = this.spare.pop() ?? new ArrayBuffer(ZSTD_PIECE_BYTES);
    const piece = new Uint8Array(buffer, 0, input.length);
    piece.set(input);
    return this.request({ type: 'piece', piece }, [buffer]);
  }

  /** Sends one request; its reply may be awaited later (a rejection nobody awaits is not reported as unhandled). */
  request(request: CompressRequest, transfer: ArrayBuffer[] = []): Promise<Uint8Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    const reply = new Promise<Uint8Array[]>((resolve, reject) => this.waiting.push({ resolve, reject }));
    reply.catch(() => undefined);
    this.worker.ref();
    this.worker.postMessage(request, transfer);
    return reply;
  }

  private retire(error: Error, first?: Waiting): void {
    this.failure ??= error;
    if (compressionWorker === this) compressionWorker = undefined;
    first?.reject(error);
    for (const waiting of this.waiting.splice(0)) waiting.reject(error);
    void this.worker.terminate();
  }
}

let compressionWorker: CompressionWorker | undefined;

/** Holds the first outputs until they contain the whole frame header, then rewrites it to declare the size. */
class ContentSizeDeclaration {
  private held: Buffer[] | undefined = [];
  private heldBytes = 0;

  constructor(private readonly contentSize: number) {}

  pass(outputs: Uint8Array[], last: boolean): Buffer[] {
    const buffers = outputs.map((output) => Buffer.from(output.buffer, output.byteOffset, output.byteLength));
    if (!this.held) return buffers;
    this.held.push(...buffers);
    this.heldBytes += buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    if (this.heldBytes < ZSTD_FRAME_HEADER_MAX_BYTES && !last) return [];
    const first = withFrameContentSize(Buffer.concat(this.held), this.contentSize);
    this.held = undefined;
    return [first];
  }
}

function sizeMismatch(contentSize: number, got: string): MegadocsError {
  return new MegadocsError('BAD_INPUT', `a zstd frame declared ${contentSize} bytes got ${got}`, {
    where: 'zstd compression',
    hint: 'The content size must be known exactly before the frame starts: report this bug',
  });
}

function failure(error: unknown, contentSize: number, level: number): MegadocsError {
  if (error instanceof MegadocsError) return error;
  return new MegadocsError('IO', `zstd compression failed (${messageOf(error)})`, {
    where: `${contentSize} bytes at level ${level}`,
    hint: 'Use a lower zstd level or a smaller shard size',
    cause: error,
  });
}

/**
 * Compresses `pieces` (exactly `contentSize` bytes in all, any piece sizes) into exactly one zstd frame whose
 * header declares Frame_Content_Size (what the MDS reader's python `zstd` requires), yielding the compressed
 * bytes as they come. Runs on the worker thread with at most two pieces of ZSTD_PIECE_BYTES in flight; the
 * pieces are copied, so the caller may reuse them. Levels ZSTD_MIN_LEVEL..ZSTD_MAX_LEVEL.
 */
export async function* zstdCompressStream(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  contentSize: number,
  level: number,
): AsyncGenerator<Buffer> {
  checkZstdLevel(level);
  compressionWorker ??= new CompressionWorker();
  const worker = compressionWorker;
  const release = await worker.acquire();
  const declaration = new ContentSizeDeclaration(contentSize);
  try {
    await worker.request({ type: 'begin', level });
    let fed = 0;
    let previous: Promise<Uint8Array[]> | undefined;
    for await (const input of pieces) {
      fed += input.length;
      if (fed > contentSize) throw sizeMismatch(contentSize, `more than ${contentSize}`);
      for (let start = 0; start < input.length; start += ZSTD_PIECE_BYTES) {
        const sent = worker.piece(input.subarray(start, start + ZSTD_PIECE_BYTES));
        if (previous) yield* declaration.pass(await previous, false);
        previous = sent;
      }
    }
    if (fed < contentSize) throw sizeMismatch(contentSize, String(fed));
    const ended = worker.request({ type: 'end' });
    if (previous) yield* declaration.pass(await previous, false);
    yield* declaration.pass(await ended, true);
  } catch (error) {
    throw failure(error, contentSize, level);
  } finally {
    release();
  }
}

/** Compresses a whole buffer into one frame that declares its size (the streamed path, collected). */
export async function zstdCompressFrame(data: Uint8Array, level: number): Promise<Buffer> {
  const outputs: Buffer[] = [];
  for await (const output of zstdCompressStream([data], data.length, level)) outputs.push(output);
  return Buffer.concat(outputs);
}
