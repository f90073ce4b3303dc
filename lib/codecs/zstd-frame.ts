// The zstd frame format (RFC 8878) as bytes: frame headers parsed, frames counted block by block, and a
// header rewritten to declare Frame_Content_Size (the MDS reader's python `zstd` refuses frames without it).
import { MegadocsError } from '../errors.js';

/** The parsed header of one zstd frame (RFC 8878 section 3.1.1.1). */
export interface ZstdFrameHeader {
  /** Bytes from the magic number to the first block header. */
  headerSize: number;
  contentSize: number | undefined;
  hasChecksum: boolean;
  /** Whether it names a dictionary (its blocks decode only with that dictionary). */
  hasDictionary: boolean;
  /** The Window_Descriptor byte; undefined when Single_Segment (the window is then the whole content). */
  windowDescriptor: number | undefined;
  /** The most bytes back a match may reach (RFC 8878 section 3.1.1.1.2). */
  windowSize: number;
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
  const windowDescriptor = singleSegment ? undefined : view[offset + 5]!;
  return {
    headerSize: end - offset,
    contentSize,
    hasChecksum: (descriptor & 0x04) !== 0,
    hasDictionary: (descriptor & 0x03) !== 0,
    windowDescriptor,
    windowSize: windowDescriptor === undefined ? contentSize! : windowSizeOf(windowDescriptor),
    contentSizeOffset,
    contentSizeBytes,
  };
}

/** The window a Window_Descriptor byte describes: 2^(10 + exponent), plus mantissa eighths of that. */
function windowSizeOf(windowDescriptor: number): number {
  const base = 2 ** (10 + (windowDescriptor >> 3));
  return base + (base / 8) * (windowDescriptor & 7);
}

/** The Frame_Content_Size the first frame's header declares, or undefined when it declares none. */
export function readFrameContentSize(frame: Uint8Array): number | undefined {
  return parseZstdFrameHeader(frame).contentSize;
}

/**
 * A block header (its 3 bytes as a little-endian number): whether it is the frame's last block and how many
 * content bytes follow it (Raw and Compressed: Block_Size; RLE: one); undefined for the reserved block type.
 */
export function parseZstdBlockHeader(fields: number): { last: boolean; contentBytes: number } | undefined {
  const blockType = (fields >> 1) & 3;
  if (blockType === 3) return undefined;
  return { last: (fields & 1) === 1, contentBytes: blockType === 1 ? 1 : fields >>> 3 };
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
        const block = parseZstdBlockHeader(view.readUIntLE(offset, 3));
        if (!block)
          throw new MegadocsError('CORRUPT', `zstd frame at byte ${start} has a reserved block type`);
        last = block.last;
        offset += 3 + block.contentBytes;
      }
      if (header.hasChecksum) offset += 4;
    }
    if (offset > view.length) throw new MegadocsError('CORRUPT', `zstd frame at byte ${start} is truncated`);
    lengths.push(offset - start);
  }
  return lengths;
}

/** The most bytes a frame header takes: the magic number and a Frame_Header of at most 14 bytes. */
export const ZSTD_FRAME_HEADER_MAX_BYTES = 18;

/**
 * Returns `frame` with a header that declares `contentSize`; `frame` may be only the first bytes of a frame
 * as long as they hold its whole header (a streamed frame is rewritten from its first output). A frame that already declares one is
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
