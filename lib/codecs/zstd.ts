// The one place that knows zstd. Decompression here: fzstd (pure JS, streaming, any window up to 32 MB).
// Compression (zstd-compress.ts), the frame format (zstd-frame.ts) and frames assembled from parts
// (zstd-assemble.ts) are re-exported from here.
import { Transform } from 'node:stream';
import { Decompress, decompress } from 'fzstd';
import { MegadocsError, messageOf } from '../errors.js';

export {
  ZSTD_BLOCK_MAX_BYTES,
  ZstdFrameStream,
  zstdFrameHeader,
  zstdFrameWithRawPrefix,
  zstdRawBlocks,
} from './zstd-assemble.js';
export {
  checkZstdLevel,
  prewarmZstdCompression,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_MAX_LEVEL,
  ZSTD_PIECE_BYTES,
  ZstdFrameCompressor,
  zstdCompressFrame,
  zstdCompressStream,
} from './zstd-compress.js';
export {
  checkZstdEngine,
  DEFAULT_ZSTD_ENGINE,
  ZSTD_ENGINES,
  type ZstdEngineChoice,
  zstdEngineName,
} from './zstd-engines.js';
export {
  parseZstdFrameHeader,
  readFrameContentSize,
  withFrameContentSize,
  type ZstdFrameHeader,
  zstdFrameLengths,
} from './zstd-frame.js';

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

/** Decompresses a whole buffer (one or more frames). */
export function zstdDecompress(data: Uint8Array): Buffer {
  try {
    const out = decompress(data);
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    throw new MegadocsError('CORRUPT', `zstd data is corrupt (${messageOf(error)})`);
  }
}
