// The body of a shard while it fills: spooled to a temporary file (its raw bytes, hashed with the header once the
// shard is complete) and, for a compressed shard, also compressed as it comes into a second temporary file, a zstd
// frame of the body alone, so that landing the shard has no compression left to do.
import { type ZstdEngineChoice, ZstdFrameCompressor } from '../codecs/zstd.js';
import type { AtomicFiles } from './atomic.js';
import type { Compression } from './mds.js';
import { RawShardFile } from './raw-shard-file.js';

/** The body's zstd frame in progress on a compression worker, its output spooled to a file. */
class BodyCompression {
  private constructor(
    private readonly frame: ZstdFrameCompressor,
    readonly file: RawShardFile,
  ) {}

  static async start(
    files: AtomicFiles,
    shardPath: string,
    level: number,
    engine: ZstdEngineChoice | undefined,
  ): Promise<BodyCompression> {
    const frame = await ZstdFrameCompressor.begin(level, engine);
    try {
      return new BodyCompression(frame, await RawShardFile.create(files, shardPath));
    } catch (error) {
      frame.release();
      throw error;
    }
  }

  /** Compresses `piece` (waiting for the oldest pieces in flight) and spools the compressed bytes that are ready. */
  async add(piece: Uint8Array): Promise<void> {
    await this.spool(await this.frame.compress(piece));
  }

  async end(): Promise<void> {
    await this.spool(await this.frame.end());
  }

  async remove(): Promise<void> {
    this.frame.release();
    await this.file.remove();
  }

  private async spool(outputs: Buffer[]): Promise<void> {
    for (const output of outputs) await this.file.append(output);
  }
}

/** A shard body: append() while the shard fills, close() when it is full, read back once, then remove(). */
export class ShardBody {
  private constructor(
    private readonly raw: RawShardFile,
    private readonly compression: BodyCompression | undefined,
  ) {}

  /**
   * A body for the shard landing at `shardPath`, compressed as it fills (by `engine`, default native) unless
   * `compression` is none. Its temporary files are registered with `files`, so abort removes them.
   */
  static async create(
    files: AtomicFiles,
    shardPath: string,
    { name, level }: Compression,
    engine?: ZstdEngineChoice,
  ): Promise<ShardBody> {
    const compression =
      name === null ? undefined : await BodyCompression.start(files, shardPath, level, engine);
    try {
      const onWriteOut = compression && ((piece: Uint8Array) => compression.add(piece));
      return new ShardBody(await RawShardFile.create(files, shardPath, onWriteOut), compression);
    } catch (error) {
      await compression?.remove();
      throw error;
    }
  }

  /** Raw bytes appended so far. */
  get bytes(): number {
    return this.raw.bytes;
  }

  /** Adds bytes at the end; they are compressed in the spool's pieces, as each is written out. */
  append(data: Uint8Array): Promise<void> {
    return this.raw.append(data);
  }

  /** The body is complete: the last buffered bytes are written out and compressed, and the frame ends. */
  async close(): Promise<void> {
    await this.raw.flush();
    await this.compression?.end();
  }

  /** The raw bytes, in pieces that share one buffer (see RawShardFile.pieces). */
  rawPieces(): AsyncGenerator<Buffer> {
    return this.raw.pieces();
  }

  /** The zstd frame of the body alone (after close()), in pieces that share one buffer; undefined uncompressed. */
  compressedPieces(): AsyncGenerator<Buffer> | undefined {
    return this.compression?.file.pieces();
  }

  /** Removes both temporary files and gives the compression worker back (also after a failure; twice is fine). */
  async remove(): Promise<void> {
    await this.compression?.remove();
    await this.raw.remove();
  }
}
