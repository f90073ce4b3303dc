// The decompressed bytes of a byte-stream shard: opens it, checks its magic bytes, undoes gzip or zstd.
// Every error names the shard: IO failures as IO, bad compressed data as CORRUPT.
import type { Readable, Transform } from 'node:stream';
import { pipeline, Readable as ReadableStream } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createZstdDecompressStream } from '../../codecs/zstd.js';
import { MegadocsError, messageOf } from '../../errors.js';
import type { ShardRef } from '../types.js';
import { checkMagic, type ShardFormat } from './detect.js';

/** Bytes shown to checkMagic: enough for every magic number, and for a message that shows what is there. */
const HEAD_LENGTH = 16;
/** Output chunk size of gunzip: bigger chunks mean fewer round trips through the line splitter. */
const GUNZIP_CHUNK = 1 << 18;

/**
 * The shard's bytes after decompression, as Buffers, pulled one chunk at a time. `onRawBytes` is told
 * the size of each chunk read from the shard (before decompression). Stopping early closes the shard.
 */
export async function* decodedChunks(
  shard: ShardRef,
  format: ShardFormat,
  onRawBytes: (count: number) => void,
): AsyncGenerator<Buffer> {
  const raw = checkedChunks(shard, format, onRawBytes);
  if (format.compression === 'none') {
    yield* raw;
    return;
  }
  const decoder =
    format.compression === 'gzip' ? createGunzip({ chunkSize: GUNZIP_CHUNK }) : createZstdDecompressStream();
  yield* decompress(shard.name, format.compression, raw, decoder);
}

async function* decompress(
  name: string,
  compression: 'gzip' | 'zstd',
  raw: AsyncGenerator<Buffer>,
  decoder: Transform,
): AsyncGenerator<Buffer> {
  const output = pipeline(ReadableStream.from(raw), decoder, () => {});
  try {
    for await (const chunk of output) yield chunk as Buffer;
  } catch (error) {
    if (error instanceof MegadocsError) throw error;
    throw new MegadocsError('CORRUPT', `${compression} data is corrupt or truncated (${messageOf(error)})`, {
      where: name,
      hint: 'Re-download or re-create this file, or leave it out of the inputs',
      cause: error,
    });
  } finally {
    output.destroy();
    await raw.return(undefined); // closes the shard now, not when the pipeline gets round to it
  }
}

/** The shard's raw chunks; the first ones are held back until the magic bytes are checked. */
async function* checkedChunks(
  shard: ShardRef,
  format: ShardFormat,
  onRawBytes: (count: number) => void,
): AsyncGenerator<Buffer> {
  const stream = await openShard(shard);
  const held: Buffer[] = [];
  let heldBytes = 0;
  let checked = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      onRawBytes(chunk.length);
      if (checked) {
        yield chunk;
        continue;
      }
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes < HEAD_LENGTH) continue;
      checked = true;
      yield* releaseChecked(shard.name, format, held);
    }
  } catch (error) {
    if (error instanceof MegadocsError) throw error;
    throw ioError(shard.name, error);
  } finally {
    stream.destroy();
  }
  if (!checked) yield* releaseChecked(shard.name, format, held);
}

function* releaseChecked(name: string, format: ShardFormat, held: Buffer[]): Generator<Buffer> {
  const head = held.length === 1 ? held[0] : Buffer.concat(held);
  checkMagic(name, format, head.subarray(0, HEAD_LENGTH));
  if (head.length > 0) yield head;
}

async function openShard(shard: ShardRef): Promise<Readable> {
  try {
    return await shard.openStream();
  } catch (error) {
    if (error instanceof MegadocsError) throw error;
    throw ioError(shard.name, error);
  }
}

function ioError(name: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `cannot read the file (${messageOf(error)})`, {
    where: name,
    hint: 'Check that the file exists and is readable',
    cause: error,
  });
}
