// One zstd frame assembled from parts (RFC 8878): a header that declares the whole content size, bytes stored
// as Raw blocks, then the blocks of a frame compressed from the bytes that follow them, alone. A Raw block changes
// no decoder state (repeat offsets and entropy tables change only in compressed blocks), so those blocks decode
// the same after it, and their distances still reach only into their own bytes: the window they were compressed
// for is kept.
import { MegadocsError } from '../errors.js';
import {
  parseZstdBlockHeader,
  parseZstdFrameHeader,
  ZSTD_FRAME_HEADER_MAX_BYTES,
  type ZstdFrameHeader,
} from './zstd-frame.js';

/** The most content one block holds (Block_Maximum_Size once the window is 128 KiB or more). */
export const ZSTD_BLOCK_MAX_BYTES = 128 * 1024;

/**
 * A frame header that declares `contentSize` (a 4-byte field, 8 from 4 GiB), without dictionary or checksum,
 * with the window a Window_Descriptor byte gives, or with none (Single_Segment: the window is the whole content).
 */
export function zstdFrameHeader(contentSize: number, windowDescriptor?: number): Buffer {
  const wide = contentSize > 0xffff_ffff;
  const singleSegment = windowDescriptor === undefined;
  const sizeAt = singleSegment ? 5 : 6;
  const header = Buffer.alloc(sizeAt + (wide ? 8 : 4));
  header.writeUInt32LE(0xfd2fb528, 0);
  header[4] = ((wide ? 3 : 2) << 6) | (singleSegment ? 0x20 : 0);
  if (!singleSegment) header[5] = windowDescriptor;
  if (wide) header.writeBigUInt64LE(BigInt(contentSize), sizeAt);
  else header.writeUInt32LE(contentSize, sizeAt);
  return header;
}

/**
 * `content` as Raw blocks of at most `blockBytes` (the frame's Block_Maximum_Size), none marked last: each
 * block header, then its content (not copied).
 */
export function* zstdRawBlocks(
  content: Uint8Array,
  blockBytes = ZSTD_BLOCK_MAX_BYTES,
): Generator<Uint8Array> {
  for (let start = 0; start < content.length; start += blockBytes) {
    const block = content.subarray(start, start + blockBytes);
    const header = Buffer.alloc(3);
    header.writeUIntLE(block.length << 3, 0, 3); // Last_Block 0, Block_Type 0 (Raw)
    yield header;
    yield block;
  }
}

const EMPTY = new Uint8Array(0);

/** Reads a stream of pieces as bytes: exact counts copied, or what is at hand passed through. */
class PieceReader {
  /** Bytes read from the source (or put back) and not yet used, in order. */
  private readonly ahead: Uint8Array[] = [];

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  /** Up to `max` bytes, not copied (used before the next call); empty at the end of the stream. */
  async upTo(max: number): Promise<Uint8Array> {
    while (this.ahead.length === 0) {
      const next = await this.source.next();
      if (next.done) return EMPTY;
      if (next.value.length > 0) this.ahead.push(next.value);
    }
    const first = this.ahead[0]!;
    if (first.length <= max) return this.ahead.shift()!;
    this.ahead[0] = first.subarray(max);
    return first.subarray(0, max);
  }

  /** Exactly `count` bytes, copied (fewer only at the end of the stream). */
  async take(count: number): Promise<Buffer> {
    const bytes = Buffer.alloc(count);
    let got = 0;
    while (got < count) {
      const piece = await this.upTo(count - got);
      if (piece.length === 0) return bytes.subarray(0, got);
      bytes.set(piece, got);
      got += piece.length;
    }
    return bytes;
  }

  /** Puts `bytes` back: they are read next. */
  unread(bytes: Uint8Array): void {
    if (bytes.length > 0) this.ahead.unshift(bytes);
  }

  async close(): Promise<void> {
    await this.source.return?.();
  }
}

function corrupt(problem: string): MegadocsError {
  return new MegadocsError('CORRUPT', `the zstd frame to take blocks from ${problem}`);
}

/** One zstd frame read from a stream of pieces: its header first, then its blocks passed through. */
export class ZstdFrameStream {
  private constructor(
    private readonly reader: PieceReader,
    readonly header: ZstdFrameHeader,
  ) {}

  /** Reads the frame header at the start of `frame`; throws CORRUPT if there is none or it names a dictionary. */
  static async open(frame: AsyncIterable<Uint8Array>): Promise<ZstdFrameStream> {
    const reader = new PieceReader(frame[Symbol.asyncIterator]());
    try {
      const start = await reader.take(ZSTD_FRAME_HEADER_MAX_BYTES);
      const header = parseZstdFrameHeader(start);
      if (header.hasDictionary) throw corrupt('needs a dictionary');
      reader.unread(start.subarray(header.headerSize));
      return new ZstdFrameStream(reader, header);
    } catch (error) {
      await reader.close();
      throw error;
    }
  }

  /**
   * The frame's blocks as they come, the last still marked last, its checksum (if any) dropped. Throws CORRUPT
   * unless the stream ends right after the frame, which ends with a last block. The source may reuse a piece once
   * the next is asked for: what is yielded is used by then, and the few bytes kept across pieces are copied.
   */
  async *blocks(): AsyncGenerator<Uint8Array> {
    const reader = this.reader;
    try {
      for (let last = false; !last; ) {
        const blockHeader = await reader.take(3);
        if (blockHeader.length < 3) throw corrupt('ends before its last block');
        const block = parseZstdBlockHeader(blockHeader.readUIntLE(0, 3));
        if (!block) throw corrupt('has a block of the reserved type');
        last = block.last;
        yield blockHeader;
        for (let left = block.contentBytes; left > 0; ) {
          const content = await reader.upTo(left);
          if (content.length === 0) throw corrupt('ends inside a block');
          left -= content.length;
          yield content;
        }
      }
      if (this.header.hasChecksum && (await reader.take(4)).length < 4)
        throw corrupt('ends inside its checksum');
      if ((await reader.upTo(1)).length > 0) throw corrupt('is followed by more bytes');
    } finally {
      await this.close();
    }
  }

  /** Stops reading the source (blocks() does when it is done). */
  close(): Promise<void> {
    return this.reader.close();
  }
}

/**
 * ONE frame of `prefix` followed by the `bodySize` bytes that `bodyFrame` (a frame of those alone, streamed)
 * decompresses to: a header that declares the total with the body frame's window (Single_Segment if the body
 * frame is: its window was its whole content), the prefix as Raw blocks, then the body frame's blocks.
 */
export async function* zstdFrameWithRawPrefix(
  prefix: Uint8Array,
  bodySize: number,
  bodyFrame: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const body = await ZstdFrameStream.open(bodyFrame);
  try {
    const { contentSize, windowDescriptor, windowSize } = body.header;
    if (contentSize !== undefined && contentSize !== bodySize)
      throw corrupt(`declares ${contentSize} bytes, not the body's ${bodySize}`);
    yield zstdFrameHeader(prefix.length + bodySize, windowDescriptor);
    const blockBytes =
      windowDescriptor === undefined ? ZSTD_BLOCK_MAX_BYTES : Math.min(ZSTD_BLOCK_MAX_BYTES, windowSize);
    yield* zstdRawBlocks(prefix, blockBytes);
    yield* body.blocks();
  } finally {
    await body.close();
  }
}
