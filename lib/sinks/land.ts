// Lands one shard from its spooled body: the header, then the body, hashed as raw bytes, compressed into one zstd
// frame that declares its size (or stored raw), hashed again and written through a temporary file, piece by piece.
import { zstdCompressStream } from '../codecs/zstd.js';
import type { AtomicFiles } from './atomic.js';
import { RunningDigests } from './hashes.js';
import type { SpoolFile } from './spool.js';

export interface LandShardOptions {
  files: AtomicFiles;
  /** The final path of the stored file. */
  path: string;
  /** Bytes that go before the body (the MDS sample table and config; empty for jsonl). */
  header: Uint8Array;
  body: SpoolFile;
  /** The zstd level, or null to store the raw bytes. */
  level: number | null;
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

async function* headerThenBody(header: Uint8Array, body: SpoolFile): AsyncGenerator<Uint8Array> {
  if (header.length > 0) yield header;
  yield* body.pieces();
}

/**
 * Writes the shard at `path` atomically and removes the body (also on failure). Memory: a few pieces of
 * SPOOL_PIECE_BYTES and ZSTD_PIECE_BYTES, whatever the shard size. The body's pieces share one buffer: hashing,
 * the compressor (which copies) and writeFile (which awaits each write) are each done with a piece before the next.
 */
export async function landShard(options: LandShardOptions): Promise<{ raw: LandedFile; stored: LandedFile }> {
  const { header, body, level } = options;
  try {
    const raw = new RunningDigests(options.rawHashes);
    const rawPieces = digested(headerThenBody(header, body), raw);
    const stored = new RunningDigests(options.storedHashes);
    const storedPieces =
      level === null ? rawPieces : zstdCompressStream(rawPieces, header.length + body.bytes, level);
    await options.files.write(options.path, digested(storedPieces, stored));
    return {
      raw: { bytes: raw.bytes, hashes: raw.digest() },
      stored: { bytes: stored.bytes, hashes: stored.digest() },
    };
  } finally {
    await body.remove();
  }
}
