// Lands one shard from its body: the header and the body hashed as raw bytes, and the stored file written through
// a temporary file, piece by piece, hashed again: the raw bytes themselves, or ONE zstd frame declaring their size
// (the header as Raw blocks, then the blocks of the body's frame, compressed while the shard filled).
import { zstdFrameWithRawPrefix } from '../codecs/zstd.js';
import type { AtomicFiles } from './atomic.js';
import { RunningDigests } from './hashes.js';
import type { ShardBody } from './shard-body.js';

export interface LandShardOptions {
  files: AtomicFiles;
  /** The final path of the stored file. */
  path: string;
  /** Bytes that go before the body (the MDS sample table and config; empty for jsonl). */
  header: Uint8Array;
  /** The closed body: compressed or not, it decides whether the stored file is a zstd frame. */
  body: ShardBody;
  rawHashes: readonly string[];
  storedHashes: readonly string[];
}

/** Byte count and digests of one landed (or described) file. */
export interface LandedFile {
  bytes: number;
  hashes: Record<string, string>;
}

/** Yields `pieces` unchanged while `digests` sees every byte. */
async function* digested(
  pieces: AsyncIterable<Uint8Array>,
  digests: RunningDigests,
): AsyncGenerator<Uint8Array> {
  for await (const piece of pieces) {
    digests.update(piece);
    yield piece;
  }
}

async function* headerThenBody(header: Uint8Array, body: ShardBody): AsyncGenerator<Uint8Array> {
  if (header.length > 0) yield header;
  yield* body.rawPieces();
}

function landed(digests: RunningDigests): LandedFile {
  return { bytes: digests.bytes, hashes: digests.digest() };
}

/** The raw bytes' count and digests, read back from the body only when there are digests to compute. */
async function describeRaw(
  header: Uint8Array,
  body: ShardBody,
  names: readonly string[],
): Promise<LandedFile> {
  if (names.length === 0) return { bytes: header.length + body.bytes, hashes: {} };
  const raw = new RunningDigests(names);
  for await (const piece of headerThenBody(header, body)) raw.update(piece);
  return landed(raw);
}

/**
 * Writes the shard at `path` atomically and removes the body (also on failure). Memory: a few pieces of
 * RAW_PIECE_BYTES, whatever the shard size. The body's pieces share one buffer: hashing and writeFile (which
 * awaits each write) are done with a piece before the next is read.
 */
export async function landShard(options: LandShardOptions): Promise<{ raw: LandedFile; stored: LandedFile }> {
  const { header, body } = options;
  try {
    const stored = new RunningDigests(options.storedHashes);
    const bodyFrame = body.compressedPieces();
    if (!bodyFrame) {
      const raw = new RunningDigests(options.rawHashes);
      const rawPieces = digested(headerThenBody(header, body), raw);
      await options.files.write(options.path, digested(rawPieces, stored));
      return { raw: landed(raw), stored: landed(stored) };
    }
    // The raw bytes are hashed while the stored file is written: two files read at once, neither waits.
    const frame = zstdFrameWithRawPrefix(header, body.bytes, bodyFrame);
    const [raw] = await Promise.all([
      describeRaw(header, body, options.rawHashes),
      options.files.write(options.path, digested(frame, stored)),
    ]);
    return { raw, stored: landed(stored) };
  } finally {
    await body.remove();
  }
}
