// Packed sequences parked on disk between packing and the mixed, shuffled write: appended in order, then
// read back by index in any order, so a global sequence shuffle costs disk space, not memory.
import { readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { MegadocsError, messageOf } from './errors.js';
import type { Sequence } from './types.js';

/**
 * Files: `PATH.bin` holds one record per sequence (u32 token count, u32 boundary count, the tokens, the
 * boundaries; little-endian), `PATH.idx` the u64 byte offset where each record starts, plus the end.
 */
const RECORD_HEADER_BYTES = 8;
const OFFSET_BYTES = 8;
/** Writes are gathered into chunks of about this size. */
const WRITE_CHUNK_BYTES = 1 << 20;

function ioError(path: string, action: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `cannot ${action} a spill file of packed sequences (${messageOf(error)})`, {
    where: path,
    hint: 'Check free space and permissions of the output directory, then rerun the same command',
  });
}

/** Fills `buffer` from `fd` at `position`; a file shorter than that is an error. */
function readExactly(fd: number, buffer: Buffer, position: number): void {
  for (let filled = 0; filled < buffer.length; ) {
    const read = readSync(fd, buffer, filled, buffer.length - filled, position + filled);
    if (read === 0) throw new Error(`short read: ${filled} of ${buffer.length} bytes`);
    filled += read;
  }
}

function bytesOf(array: Uint32Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

/** Appends sequences to a spill; `finish` turns it into a reader. */
export class SequenceSpillWriter {
  private chunks: Buffer[] = [];
  private offsets: Buffer[] = [];
  private chunkBytes = 0;
  private position = 0;
  private count = 0;
  private tokenCount = 0;

  private constructor(
    readonly path: string,
    private readonly data: FileHandle,
    private readonly index: FileHandle,
  ) {}

  static async create(path: string): Promise<SequenceSpillWriter> {
    try {
      const data = await open(`${path}.bin`, 'w');
      const index = await open(`${path}.idx`, 'w');
      return new SequenceSpillWriter(path, data, index);
    } catch (error) {
      throw ioError(path, 'create', error);
    }
  }

  /** Queues one sequence; resolves once the buffered bytes are handed to the OS when a chunk is full. */
  async write(sequence: Sequence): Promise<void> {
    const boundaries = sequence.boundaries ?? new Uint32Array(0);
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    header.writeUInt32LE(sequence.tokens.length, 0);
    header.writeUInt32LE(boundaries.length, 4);
    const offset = Buffer.alloc(OFFSET_BYTES);
    offset.writeBigUInt64LE(BigInt(this.position));
    this.offsets.push(offset);
    this.chunks.push(header, bytesOf(sequence.tokens), bytesOf(boundaries));
    const size = RECORD_HEADER_BYTES + sequence.tokens.byteLength + boundaries.byteLength;
    this.position += size;
    this.chunkBytes += size;
    this.count += 1;
    this.tokenCount += sequence.tokens.length;
    if (this.chunkBytes >= WRITE_CHUNK_BYTES) await this.flush();
  }

  /** Writes what is buffered, closes the files and opens them for reading. */
  async finish(): Promise<SequenceSpillReader> {
    const end = Buffer.alloc(OFFSET_BYTES);
    end.writeBigUInt64LE(BigInt(this.position));
    this.offsets.push(end);
    await this.flush();
    await this.close();
    return SequenceSpillReader.open(this.path, this.count, this.tokenCount);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.data.close(), this.index.close()]);
  }

  private async flush(): Promise<void> {
    const data = Buffer.concat(this.chunks);
    const offsets = Buffer.concat(this.offsets);
    this.chunks = [];
    this.offsets = [];
    this.chunkBytes = 0;
    try {
      await this.data.write(data);
      await this.index.write(offsets);
    } catch (error) {
      throw ioError(this.path, 'write', error);
    }
  }
}

/** Random access to the sequences of a finished spill. */
export class SequenceSpillReader {
  private constructor(
    readonly path: string,
    /** Sequences in the spill. */
    readonly sequences: number,
    /** Tokens over all its sequences. */
    readonly tokens: number,
    private readonly data: FileHandle,
    private readonly index: FileHandle,
  ) {}

  static async open(path: string, sequences: number, tokens: number): Promise<SequenceSpillReader> {
    try {
      const data = await open(`${path}.bin`, 'r');
      const index = await open(`${path}.idx`, 'r');
      return new SequenceSpillReader(path, sequences, tokens, data, index);
    } catch (error) {
      throw ioError(path, 'open', error);
    }
  }

  /**
   * Sequence `position` (0-based, in the order they were written). The two small reads are synchronous: from
   * the page cache they take microseconds, far less than a round trip through libuv's thread pool each.
   */
  read(position: number): Sequence {
    if (!Number.isInteger(position) || position < 0 || position >= this.sequences) {
      throw new RangeError(`${this.path}: no sequence ${position} among ${this.sequences}`);
    }
    try {
      const bounds = Buffer.alloc(2 * OFFSET_BYTES);
      readExactly(this.index.fd, bounds, position * OFFSET_BYTES);
      const start = Number(bounds.readBigUInt64LE(0));
      const end = Number(bounds.readBigUInt64LE(OFFSET_BYTES));
      const record = new ArrayBuffer(end - start);
      const view = Buffer.from(record);
      readExactly(this.data.fd, view, start);
      const tokenCount = view.readUInt32LE(0);
      const boundaryCount = view.readUInt32LE(4);
      const tokens = new Uint32Array(record, RECORD_HEADER_BYTES, tokenCount);
      if (boundaryCount === 0) return { tokens };
      const boundaries = new Uint32Array(record, RECORD_HEADER_BYTES + 4 * tokenCount, boundaryCount);
      return { tokens, boundaries };
    } catch (error) {
      throw ioError(this.path, `read sequence ${position} of`, error);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.data.close(), this.index.close()]);
  }
}
