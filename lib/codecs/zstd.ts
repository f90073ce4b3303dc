// The one place that knows zstd. Decompression: fzstd (pure JS, streaming, any window up to 32 MB).
// Compression lives here too (single frame with Frame_Content_Size, as the MDS reader requires).
import { Transform } from 'node:stream';
import { Decompress } from 'fzstd';
import { messageOf } from '../errors.js';

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
