// The one place that knows zstd. Decompression: fzstd (pure JS, streaming, any window up to 32 MB).
// Compression: zstd-codec's streaming API into ONE frame whose header is then made to declare its content size.
import { createRequire } from 'node:module';
import { Transform } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Decompress, decompress } from 'fzstd';
import { MegadocsError, messageOf } from '../errors.js';

/** The 4 magic bytes every zstd frame starts with (RFC 8878), little-endian 0xFD2FB528. */
export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** A Transform that decompresses a zstd stream (one or more frames). Errors say the data is corrupt. */
export function createZstdDecompressStream(): Transform {
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        decoder.push(chunk);
        callback();
      } catch (error) {
        callback(new Error(`zstd data is corrupt (${messageOf(error)})`));
      }
    },
    flush(callback) {
      try {
        decoder.push(new Uint8Array(0), true);
        callback();
      } catch (error) {
        callback(new Error(`zstd data is corrupt or truncated (${messageOf(error)})`));
      }
    },
  });
  const decoder = new Decompress((data) => {
    transform.push(Buffer.from(data));
  });
  return transform;
}

/**
 * Levels zstd-codec 0.1.5 can run: its wasm heap is fixed at 16 MiB (the module declares that maximum),
 * and level 10 and above need bigger match tables, so they abort with OOM at any input size.
 */
export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 9;
export const ZSTD_DEFAULT_LEVEL = 3;

/** Input is handed to the wasm heap in pieces of this size, so the heap never holds the whole input. */
const FEED_CHUNK_BYTES = 1 << 20;

interface ZstdStreaming {
  compressChunks(chunks: Iterable<Uint8Array>, sizeHint: number, level: number): Uint8Array | null;
}
interface ZstdCodecModule {
  ZstdCodec: { run(onReady: (zstd: { Streaming: new () => ZstdStreaming }) => void): void };
}

const require = createRequire(import.meta.url);
const { ZstdCodec } = require('zstd-codec') as ZstdCodecModule;
let streaming: Promise<ZstdStreaming> | undefined;

/** One wasm instance, made on first use and again after a failure (an aborted instance stays dead). */
function codec(): Promise<ZstdStreaming> {
  streaming ??= new Promise((resolve) => ZstdCodec.run((zstd) => resolve(new zstd.Streaming())));
  return streaming;
}

/** Throws a BAD_OPTION error naming the accepted levels unless `level` is one zstd-codec can run. */
export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new MegadocsError('BAD_OPTION', `zstd level ${level} is not supported`, {
      where: 'compression',
      hint: `Use a level from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL} (zstd-codec's fixed 16 MiB wasm heap runs out of memory at level 10 and above)`,
    });
  }
}

function* pieces(data: Uint8Array): Generator<Uint8Array> {
  for (let start = 0; start < data.length; start += FEED_CHUNK_BYTES) {
    yield data.subarray(start, Math.min(start + FEED_CHUNK_BYTES, data.length));
  }
}

/**
 * Compresses `data` into exactly one zstd frame whose header declares Frame_Content_Size (what the
 * MDS reader's python `zstd` requires). Any input size; levels ZSTD_MIN_LEVEL..ZSTD_MAX_LEVEL.
 */
export async function zstdCompressFrame(data: Uint8Array, level: number): Promise<Buffer> {
  checkZstdLevel(level);
  const instance = await codec();
  let frame: Uint8Array | null;
  try {
    frame = instance.compressChunks(pieces(data), Math.max(1024, data.length >>> 1), level);
  } catch (error) {
    streaming = undefined;
    throw new MegadocsError('IO', `zstd compression failed (${messageOf(error)})`, {
      where: `${data.length} bytes at level ${level}`,
      hint: 'Use a lower zstd level or a smaller shard size',
    });
  }
  if (!frame) {
    streaming = undefined;
    throw new MegadocsError('IO', 'zstd compression failed', {
      where: `${data.length} bytes at level ${level}`,
      hint: 'Use a lower zstd level or a smaller shard size',
    });
  }
  return withFrameContentSize(frame, data.length);
}

/**
 * The same compression on a worker thread, so the calling thread keeps parsing and packing while a shard
 * compresses (the MDS and jsonl writers use this). One worker, made on first use, kept alive only while
 * a job is in flight; a failed worker is replaced on the next call.
 */
export async function zstdCompressFrameOffThread(data: Uint8Array, level: number): Promise<Buffer> {
  checkZstdLevel(level);
  compressionWorker ??= new CompressionWorker();
  const frame = await compressionWorker.compress(data, level).catch((error: unknown) => {
    throw new MegadocsError('IO', `zstd compression failed (${messageOf(error)})`, {
      where: `${data.length} bytes at level ${level}`,
      hint: 'Use a lower zstd level or a smaller shard size',
    });
  });
  return withFrameContentSize(frame, data.length);
}

/** The worker's code (evaluated as CommonJS or ESM, whichever --input-type says): one zstd-codec instance. */
const WORKER_SOURCE = `
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const codec = await import(workerData.codecUrl);
  const { ZstdCodec } = codec.default ?? codec;
  const streaming = await new Promise((resolve) => ZstdCodec.run((zstd) => resolve(new zstd.Streaming())));
  function* pieces(data) {
    for (let start = 0; start < data.length; start += workerData.chunkBytes) {
      yield data.subarray(start, Math.min(start + workerData.chunkBytes, data.length));
    }
  }
  parentPort.on('message', ({ id, data, level }) => {
    let frame = null;
    let error = 'zstd-codec returned no frame';
    try {
      frame = streaming.compressChunks(pieces(data), Math.max(1024, data.length >>> 1), level);
    } catch (thrown) {
      error = String(thrown);
    }
    if (frame) parentPort.postMessage({ id, frame }, [frame.buffer]);
    else parentPort.postMessage({ id, error });
  });
})();
`;

interface WorkerReply {
  id: number;
  frame?: Uint8Array;
  error?: string;
}

class CompressionWorker {
  private readonly worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { codecUrl: pathToFileURL(require.resolve('zstd-codec')).href, chunkBytes: FEED_CHUNK_BYTES },
  });
  private readonly jobs = new Map<
    number,
    { resolve: (frame: Uint8Array) => void; reject: (error: unknown) => void }
  >();
  private nextId = 0;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => {
      const job = this.jobs.get(reply.id);
      this.jobs.delete(reply.id);
      if (this.jobs.size === 0) this.worker.unref();
      if (reply.frame) job?.resolve(reply.frame);
      else this.fail(new Error(reply.error));
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the compression worker exited with code ${code}`)));
  }

  compress(data: Uint8Array, level: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const id = this.nextId;
      this.nextId += 1;
      this.jobs.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, data, level });
    });
  }

  /** Rejects every job in flight and retires this worker (an aborted zstd-codec instance stays dead). */
  private fail(error: unknown): void {
    if (compressionWorker === this) compressionWorker = undefined;
    for (const job of this.jobs.values()) job.reject(error);
    this.jobs.clear();
    void this.worker.terminate();
  }
}

let compressionWorker: CompressionWorker | undefined;

/** Decompresses a whole buffer (one or more frames). */
export function zstdDecompress(data: Uint8Array): Buffer {
  try {
    const out = decompress(data);
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    throw new MegadocsError('CORRUPT', `zstd data is corrupt (${messageOf(error)})`);
  }
}

/** The parsed header of one zstd frame (RFC 8878 section 3.1.1.1). */
export interface ZstdFrameHeader {
  /** Bytes from the magic number to the first block header. */
  headerSize: number;
  contentSize: number | undefined;
  hasChecksum: boolean;
  /** Where the Frame_Content_Size field starts and its width (0 when absent). */
  contentSizeOffset: number;
  contentSizeBytes: number;
}

const FCS_FIELD_BYTES = [0, 2, 4, 8];
const DICT_ID_FIELD_BYTES = [0, 1, 2, 4];

/** Parses the frame header at `offset`; throws CORRUPT when the bytes are not a zstd frame header. */
export function parseZstdFrameHeader(frame: Uint8Array, offset = 0): ZstdFrameHeader {
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.length < offset + 6 || view.readUInt32LE(offset) !== 0xfd2fb528) {
    throw new MegadocsError('CORRUPT', `no zstd frame at byte ${offset} (bad magic number)`);
  }
  const descriptor = view[offset + 4]!;
  if (descriptor & 0x08) {
    throw new MegadocsError('CORRUPT', `zstd frame header at byte ${offset} sets the reserved bit`);
  }
  const singleSegment = (descriptor & 0x20) !== 0;
  const fcsFlag = descriptor >> 6;
  const contentSizeBytes = fcsFlag === 0 && singleSegment ? 1 : FCS_FIELD_BYTES[fcsFlag]!;
  const contentSizeOffset = offset + 5 + (singleSegment ? 0 : 1) + DICT_ID_FIELD_BYTES[descriptor & 0x03]!;
  const end = contentSizeOffset + contentSizeBytes;
  if (view.length < end)
    throw new MegadocsError('CORRUPT', `zstd frame header at byte ${offset} is truncated`);
  let contentSize: number | undefined;
  if (contentSizeBytes === 1) contentSize = view[contentSizeOffset]!;
  else if (contentSizeBytes === 2) contentSize = view.readUInt16LE(contentSizeOffset) + 256;
  else if (contentSizeBytes === 4) contentSize = view.readUInt32LE(contentSizeOffset);
  else if (contentSizeBytes === 8) contentSize = Number(view.readBigUInt64LE(contentSizeOffset));
  return {
    headerSize: end - offset,
    contentSize,
    hasChecksum: (descriptor & 0x04) !== 0,
    contentSizeOffset,
    contentSizeBytes,
  };
}

/** The Frame_Content_Size the first frame's header declares, or undefined when it declares none. */
export function readFrameContentSize(frame: Uint8Array): number | undefined {
  return parseZstdFrameHeader(frame).contentSize;
}

/** Walks the blocks of every frame in `data`: the byte length of each frame, in order. Skippable frames count too. */
export function zstdFrameLengths(data: Uint8Array): number[] {
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const lengths: number[] = [];
  let offset = 0;
  while (offset < view.length) {
    const start = offset;
    const magic = view.length >= offset + 8 ? view.readUInt32LE(offset) : 0;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      offset += 8 + view.readUInt32LE(offset + 4);
    } else {
      const header = parseZstdFrameHeader(view, offset);
      offset += header.headerSize;
      let last = false;
      while (!last) {
        if (offset + 3 > view.length)
          throw new MegadocsError('CORRUPT', `zstd frame at byte ${start} is truncated`);
        const blockHeader = view.readUIntLE(offset, 3);
        last = (blockHeader & 1) === 1;
        const blockType = (blockHeader >> 1) & 3;
        if (blockType === 3)
          throw new MegadocsError('CORRUPT', `zstd frame at byte ${start} has a reserved block type`);
        offset += 3 + (blockType === 1 ? 1 : blockHeader >>> 3);
      }
      if (header.hasChecksum) offset += 4;
    }
    if (offset > view.length) throw new MegadocsError('CORRUPT', `zstd frame at byte ${start} is truncated`);
    lengths.push(offset - start);
  }
  return lengths;
}

/**
 * Returns `frame` with a header that declares `contentSize`. A frame that already declares one is
 * checked and returned as is. Otherwise the Frame_Content_Size field is inserted after the
 * Dictionary_ID field and the descriptor's FCS flag set; Single_Segment stays 0 so the
 * Window_Descriptor keeps its meaning, which rules out the 1-byte form: sizes 256..65791 take
 * the 2-byte form (value - 256), others 4 or 8 bytes. The blocks are not touched.
 */
export function withFrameContentSize(frame: Uint8Array, contentSize: number): Buffer {
  const header = parseZstdFrameHeader(frame);
  const bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (header.contentSize !== undefined) {
    if (header.contentSize !== contentSize) {
      throw new MegadocsError(
        'CORRUPT',
        `zstd frame declares ${header.contentSize} bytes, expected ${contentSize}`,
      );
    }
    return bytes;
  }
  let flag: number;
  let field: Buffer;
  if (contentSize >= 256 && contentSize <= 65_791) {
    flag = 1;
    field = Buffer.alloc(2);
    field.writeUInt16LE(contentSize - 256);
  } else if (contentSize <= 0xffff_ffff) {
    flag = 2;
    field = Buffer.alloc(4);
    field.writeUInt32LE(contentSize);
  } else {
    flag = 3;
    field = Buffer.alloc(8);
    field.writeBigUInt64LE(BigInt(contentSize));
  }
  const out = Buffer.allocUnsafe(bytes.length + field.length);
  bytes.copy(out, 0, 0, header.contentSizeOffset);
  out[4] = (bytes[4]! & 0x3f) | (flag << 6);
  field.copy(out, header.contentSizeOffset);
  bytes.copy(out, header.contentSizeOffset + field.length, header.contentSizeOffset);
  return out;
}
