// zstd compression streamed in bounded pieces on worker threads (the engine the caller picks), a frame whose size
// is not known up front (ZstdFrameCompressor) or ONE frame that declares its content size (zstdCompressStream):
// the caller keeps working, and neither side ever holds the whole input or output.
import type { Worker } from 'node:worker_threads';
import { MegadocsError, messageOf } from '../errors.js';
import { startWorker, stopWorker } from '../worker-entry.js';
import { checkZstdEngine, DEFAULT_ZSTD_ENGINE, type ZstdEngineChoice } from './zstd-engines.js';
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
/** Pieces sent to a frame's worker before the caller waits for the oldest one's output. */
const PIECES_IN_FLIGHT = 4;

/** Throws a BAD_OPTION error naming the accepted levels unless `level` is one zstd-codec can run. */
export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new MegadocsError('BAD_OPTION', `zstd level ${level} is not supported`, {
      where: 'compression',
      hint: `Use a level from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL} (zstd-codec's fixed 16 MiB wasm heap runs out of memory at level 10 and above)`,
    });
  }
}

/** What a compression worker is started with. */
export interface CompressWorkerSettings {
  engine: ZstdEngineChoice;
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
 * A compression thread: one frame at a time (two frames at level 9 would not fit zstd-codec's 16 MiB heap),
 * requests answered in order. Kept alive only while a request is in flight; a failed worker is retired (an
 * aborted zstd-codec instance stays dead) and the next frame starts a new one.
 */
class CompressionWorker {
  private readonly worker: Worker;
  private readonly waiting: Waiting[] = [];
  /** Piece buffers handed back by the worker, ready to be refilled. */
  private readonly spare: ArrayBuffer[] = [];
  private failure: Error | undefined;

  constructor(readonly engine: ZstdEngineChoice) {
    this.worker = startWorker(import.meta.url, 'zstd-worker', {
      workerData: { engine } satisfies CompressWorkerSettings,
    });
    this.worker.on('message', (reply: CompressReply) => {
      const waiting = this.waiting.shift();
      if (this.waiting.length === 0) this.worker.unref();
      if (reply.type === 'output') {
        if (reply.spent && this.spare.length < PIECES_IN_FLIGHT) this.spare.push(reply.spent);
        waiting?.resolve(reply.outputs);
      } else this.retire(new Error(reply.error), waiting);
    });
    this.worker.on('error', (error) => this.retire(error));
    this.worker.on('exit', (code) =>
      this.retire(new Error(`the compression worker exited with code ${code}`)),
    );
    // After the listeners: on Node 20 adding a 'message' listener refs the worker again, and a worker started
    // ahead (prewarmZstdCompression) that never gets a frame would keep the process from exiting.
    this.worker.unref();
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

  /** Whether it was retired (failed or stopped): no frame can use it any more. */
  get retired(): boolean {
    return this.failure !== undefined;
  }

  /** Stops the thread (an idle worker that is not kept). */
  stop(): void {
    this.retire(new Error('the compression worker was stopped'));
  }

  private retire(error: Error, first?: Waiting): void {
    this.failure ??= error;
    if (idleWorkers.get(this.engine) === this) idleWorkers.delete(this.engine);
    first?.reject(error);
    for (const waiting of this.waiting.splice(0)) waiting.reject(error);
    void stopWorker(this.worker);
  }
}

/**
 * The worker kept for the next frame, per engine. A frame holds a worker from begin to end, and a frame that
 * needs one while every worker is held starts another: waiting instead would deadlock two writers in one process
 * whose shards fill at the same time, each holding its frame open until it can write more. Frames one after
 * another (a writer's shards) reuse the same worker.
 */
const idleWorkers = new Map<ZstdEngineChoice, CompressionWorker>();

/** Starts the worker for the next frame now, so its start-up is not paid when the first frame begins. */
export function prewarmZstdCompression(engine: ZstdEngineChoice = DEFAULT_ZSTD_ENGINE): void {
  if (!idleWorkers.has(engine)) idleWorkers.set(engine, new CompressionWorker(engine));
}

function takeWorker(engine: ZstdEngineChoice): CompressionWorker {
  const worker = idleWorkers.get(engine) ?? new CompressionWorker(engine);
  idleWorkers.delete(engine);
  return worker;
}

function giveBackWorker(worker: CompressionWorker): void {
  if (worker.retired) return;
  if (idleWorkers.has(worker.engine)) worker.stop();
  else idleWorkers.set(worker.engine, worker);
}

function compressionError(error: unknown, where: string): MegadocsError {
  if (error instanceof MegadocsError) return error;
  return new MegadocsError('IO', `zstd compression failed (${messageOf(error)})`, {
    where,
    hint: 'Use a lower zstd level or a smaller shard size',
    cause: error,
  });
}

const asBuffers = (outputs: Uint8Array[]) =>
  outputs.map((output) => Buffer.from(output.buffer, output.byteOffset, output.byteLength));

/**
 * One zstd frame compressed on a worker thread while its input arrives, its size not known up front: the
 * frame header declares none. compress() sends a piece and resolves to the output of the oldest pieces once
 * more than PIECES_IN_FLIGHT are out, so the caller keeps producing while the worker compresses; end() returns
 * the rest. The frame holds its worker
 * from begin() until end() or release(). Levels ZSTD_MIN_LEVEL..ZSTD_MAX_LEVEL.
 */
export class ZstdFrameCompressor {
  private worker: CompressionWorker | undefined;
  /** Replies to the pieces sent and not yet collected, oldest first. */
  private inFlight: Promise<Uint8Array[]>[] = [];
  /** Input bytes sent so far. */
  private fed = 0;

  private constructor(
    worker: CompressionWorker,
    private readonly level: number,
  ) {
    this.worker = worker;
  }

  /** Starts a frame on a free worker running `engine`. */
  static async begin(
    level: number,
    engine: ZstdEngineChoice = DEFAULT_ZSTD_ENGINE,
  ): Promise<ZstdFrameCompressor> {
    checkZstdLevel(level);
    const frame = new ZstdFrameCompressor(takeWorker(checkZstdEngine(engine, 'zstdEngine')), level);
    try {
      await frame.held().request({ type: 'begin', level });
    } catch (error) {
      frame.release();
      throw compressionError(error, frame.where());
    }
    return frame;
  }

  /** Sends `input` (copied: the caller may reuse it; any size); resolves to the compressed bytes ready so far. */
  async compress(input: Uint8Array): Promise<Buffer[]> {
    const worker = this.held();
    const outputs: Buffer[] = [];
    try {
      for (let start = 0; start < input.length; start += ZSTD_PIECE_BYTES) {
        const piece = input.subarray(start, start + ZSTD_PIECE_BYTES);
        this.inFlight.push(worker.piece(piece));
        this.fed += piece.length;
        if (this.inFlight.length > PIECES_IN_FLIGHT) outputs.push(...asBuffers(await this.inFlight.shift()!));
      }
    } catch (error) {
      this.release();
      throw compressionError(error, this.where());
    }
    return outputs;
  }

  /** Ends the frame: the rest of its compressed bytes. The worker is free for the next frame. */
  async end(): Promise<Buffer[]> {
    const worker = this.held();
    try {
      const ended = worker.request({ type: 'end' });
      const outputs: Buffer[] = [];
      for (const reply of this.inFlight.splice(0)) outputs.push(...asBuffers(await reply));
      outputs.push(...asBuffers(await ended));
      return outputs;
    } catch (error) {
      throw compressionError(error, this.where());
    } finally {
      this.release();
    }
  }

  /** Gives the worker back, the frame left unfinished if it was (after a failure, or its output unwanted). */
  release(): void {
    const worker = this.worker;
    this.worker = undefined;
    this.inFlight = [];
    if (worker) giveBackWorker(worker);
  }

  private held(): CompressionWorker {
    if (!this.worker) {
      throw new MegadocsError('BAD_INPUT', 'the zstd frame was already ended or released', {
        where: this.where(),
      });
    }
    return this.worker;
  }

  private where(): string {
    return `zstd frame at level ${this.level} after ${this.fed} bytes`;
  }
}

/** Holds the first outputs until they contain the whole frame header, then rewrites it to declare the size. */
class ContentSizeDeclaration {
  private held: Buffer[] | undefined = [];
  private heldBytes = 0;

  constructor(private readonly contentSize: number) {}

  pass(outputs: Buffer[], last: boolean): Buffer[] {
    if (!this.held) return outputs;
    this.held.push(...outputs);
    this.heldBytes += outputs.reduce((sum, output) => sum + output.length, 0);
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

/**
 * Compresses `pieces` (exactly `contentSize` bytes in all, any piece sizes) into exactly one zstd frame whose
 * header declares Frame_Content_Size (what the MDS reader's python `zstd` requires), yielding the compressed
 * bytes as they come (a ZstdFrameCompressor whose first output gets the size written in). The pieces are
 * copied, so the caller may reuse them. Levels ZSTD_MIN_LEVEL..ZSTD_MAX_LEVEL.
 */
export async function* zstdCompressStream(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  contentSize: number,
  level: number,
  engine?: ZstdEngineChoice,
): AsyncGenerator<Buffer> {
  const frame = await ZstdFrameCompressor.begin(level, engine);
  const declaration = new ContentSizeDeclaration(contentSize);
  try {
    let fed = 0;
    for await (const input of pieces) {
      fed += input.length;
      if (fed > contentSize) throw sizeMismatch(contentSize, `more than ${contentSize}`);
      yield* declaration.pass(await frame.compress(input), false);
    }
    if (fed < contentSize) throw sizeMismatch(contentSize, String(fed));
    yield* declaration.pass(await frame.end(), true);
  } finally {
    frame.release();
  }
}

/** Compresses a whole buffer into one frame that declares its size (the streamed path, collected). */
export async function zstdCompressFrame(
  data: Uint8Array,
  level: number,
  engine?: ZstdEngineChoice,
): Promise<Buffer> {
  const outputs: Buffer[] = [];
  for await (const output of zstdCompressStream([data], data.length, level, engine)) outputs.push(output);
  return Buffer.concat(outputs);
}
