// Writes MosaicML Streaming (MDS) datasets: the MdsWriter (shards rolled at size_limit, landed atomically,
// index.json last) and mdsSink, the sink stage for packed sequences. Byte layout in mds-format.ts.
import { createHash, getHashes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { checkZstdLevel, ZSTD_DEFAULT_LEVEL, zstdCompressFrameOffThread } from '../codecs/zstd.js';
import { MegadocsError } from '../errors.js';
import { toAsyncIterable } from '../stream.js';
import type { Sequence } from '../types.js';
import { AtomicFiles, OneInFlight } from './atomic.js';
import {
  type ColumnEncoding,
  encodeColumn,
  encodeShard,
  encodingSize,
  joinSample,
  type MdsFileInfo,
  type MdsShardEntry,
  parseEncoding,
  pythonJson,
  shardBasenames,
} from './mds-format.js';

/** A validated compression spec: `none`, `zstd` (level 3) or `zstd:N`. */
export interface Compression {
  /** The name written to index.json (`zstd`, `zstd:7`), null for none. */
  name: string | null;
  level: number;
}

/** Parses `none` | `zstd` | `zstd:N`; throws a BAD_OPTION error that lists what is accepted. */
export function parseCompression(spec: string): Compression {
  if (spec === 'none') return { name: null, level: 0 };
  if (spec === 'zstd') return { name: 'zstd', level: ZSTD_DEFAULT_LEVEL };
  const match = /^zstd:(\d+)$/.exec(spec);
  if (match) {
    const level = Number(match[1]);
    checkZstdLevel(level);
    return { name: spec, level };
  }
  throw new MegadocsError('BAD_OPTION', `unknown compression "${spec}"`, {
    where: 'compression',
    hint: 'Use none, zstd (level 3) or zstd:N with N from 1 to 9',
  });
}

/** Hash names as MDS writes them (python hashlib names) and node's names for them. */
const HASH_ALGORITHMS: Record<string, string> = {
  blake2b: 'blake2b512',
  blake2s: 'blake2s256',
  md5: 'md5',
  sha1: 'sha1',
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha3_224: 'sha3-224',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
};

/** The hash names (python hashlib spelling) this Node build can compute. */
export function supportedHashes(): string[] {
  const available = new Set(getHashes());
  return Object.keys(HASH_ALGORITHMS).filter((name) => available.has(HASH_ALGORITHMS[name]!));
}

/** Sorted, de-duplicated hash names; throws BAD_OPTION for names this build cannot compute. */
export function checkHashes(names: readonly string[]): string[] {
  const supported = supportedHashes();
  for (const name of names) {
    if (!supported.includes(name)) {
      throw new MegadocsError('BAD_OPTION', `unsupported shard hash "${name}"`, {
        where: 'hashes',
        hint: `Use any of ${supported.join(', ')}`,
      });
    }
  }
  return [...new Set(names)].sort();
}

/** Lowercase hex digests of `data` for each name in `names`. */
export function digests(data: Uint8Array, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => [name, createHash(HASH_ALGORITHMS[name]!).update(data).digest('hex')]),
  );
}

/** What onShard hears each time a shard lands. */
export interface ShardInfo {
  index: number;
  basename: string;
  samples: number;
  rawBytes: number;
  storedBytes: number;
}

export interface MdsWriterOptions {
  dir: string;
  /** Column name -> MDS encoding (`ndarray:uint32`, `str`, ...). Stored in sorted name order. */
  columns: Record<string, string>;
  /** `none`, `zstd`, `zstd:N`. */
  compression: string;
  /** Raw shard size limit in bytes (default 1 << 26). */
  sizeLimit?: number;
  /** Hash algorithms for raw and stored files (default sha1). */
  hashes?: string[];
  onShard?: (info: ShardInfo) => void;
}

export interface MdsWriterSummary {
  shards: number;
  samples: number;
  rawBytes: number;
  storedBytes: number;
}

export const DEFAULT_SIZE_LIMIT = 1 << 26;
const SHARD_HEADER_BYTES = 8;
const OFFSET_BYTES = 4;

/**
 * An MDS dataset being written. Samples accumulate until the next one would push the raw shard past
 * size_limit; the shard is then encoded, hashed, compressed and landed (at most one in flight) while
 * the next one fills. finish() writes index.json last; abort() leaves no index and no temporary file.
 */
export class MdsWriter {
  private readonly names: string[];
  private readonly encodings: ColumnEncoding[];
  private readonly sizes: Array<number | null>;
  private readonly config: Buffer;
  private readonly files = new AtomicFiles();
  private readonly entries: MdsShardEntry[] = [];
  private samples: Buffer[] = [];
  private shardBytes: number;
  private readonly landing = new OneInFlight();
  private closed = false;
  private written = 0;
  private nextShard = 0;
  private readonly summary: MdsWriterSummary = { shards: 0, samples: 0, rawBytes: 0, storedBytes: 0 };

  private constructor(
    private readonly options: MdsWriterOptions,
    private readonly compression: Compression,
    private readonly hashes: string[],
    private readonly sizeLimit: number,
  ) {
    this.names = Object.keys(options.columns).sort();
    if (this.names.length === 0) {
      throw new MegadocsError('BAD_OPTION', 'an MDS dataset needs at least one column', {
        where: options.dir,
      });
    }
    this.encodings = this.names.map((name) => parseEncoding(options.columns[name]!, `column ${name}`));
    this.sizes = this.encodings.map(encodingSize);
    this.config = Buffer.from(pythonJson(this.shardConfig()));
    this.shardBytes = this.emptyShardBytes();
  }

  /** Validates the options, creates the directory and removes a stale index.json (it is written last). */
  static async open(options: MdsWriterOptions): Promise<MdsWriter> {
    const compression = parseCompression(options.compression);
    const hashes = checkHashes(options.hashes ?? ['sha1']);
    const sizeLimit = options.sizeLimit ?? DEFAULT_SIZE_LIMIT;
    if (!Number.isInteger(sizeLimit) || sizeLimit <= 0 || sizeLimit >= 2 ** 32) {
      throw new MegadocsError('BAD_OPTION', `shard size ${sizeLimit} is out of range`, {
        where: 'shard size',
        hint: 'Use a whole number of bytes between 1 and 4 GiB - 1 (raw shard offsets are u32)',
      });
    }
    const writer = new MdsWriter(options, compression, hashes, sizeLimit);
    await mkdir(options.dir, { recursive: true });
    await rm(path.join(options.dir, 'index.json'), { force: true });
    return writer;
  }

  private shardConfig() {
    return {
      column_encodings: this.names.map((name) => this.options.columns[name]!),
      column_names: this.names,
      column_sizes: this.sizes,
      compression: this.compression.name,
      format: 'mds',
      hashes: this.hashes,
      size_limit: this.sizeLimit,
      version: 2,
    };
  }

  private emptyShardBytes(): number {
    return SHARD_HEADER_BYTES + this.config.length;
  }

  /** Adds one sample (an object with every column); resolves once it is buffered (backpressure on flushes). */
  async write(sample: Record<string, unknown>): Promise<void> {
    if (this.closed)
      throw new MegadocsError('BAD_INPUT', 'write after finish or abort', { where: this.options.dir });
    this.landing.throwIfFailed();
    const encoded = this.encodeSample(sample);
    const added = encoded.length + OFFSET_BYTES;
    if (this.samples.length > 0 && this.shardBytes + added > this.sizeLimit) await this.flush();
    this.samples.push(encoded);
    this.shardBytes += added;
    this.written += 1;
  }

  private encodeSample(sample: Record<string, unknown>): Buffer {
    const columns = this.names.map((name, at) => {
      const where = `sample ${this.written}, column ${name}`;
      return encodeColumn(sample[name], this.encodings[at]!, this.sizes[at] !== null, where);
    });
    return joinSample(columns, this.sizes);
  }

  /** Hands the filled shard to the landing chain; waits for the previous one first (one in flight). */
  private async flush(): Promise<void> {
    const samples = this.samples;
    const shard = this.nextShard;
    this.nextShard += 1;
    this.samples = [];
    this.shardBytes = this.emptyShardBytes();
    await this.landing.submit(() => this.land(shard, samples));
  }

  private async land(shard: number, samples: Buffer[]): Promise<void> {
    const raw = encodeShard(samples, this.config);
    const names = shardBasenames(shard, this.compression.name !== null);
    const rawInfo: MdsFileInfo = {
      basename: names.raw,
      bytes: raw.length,
      hashes: digests(raw, this.hashes),
    };
    let zipInfo: MdsFileInfo | null = null;
    let stored: Buffer = raw;
    if (names.zip) {
      stored = await zstdCompressFrameOffThread(raw, this.compression.level);
      zipInfo = { basename: names.zip, bytes: stored.length, hashes: digests(stored, this.hashes) };
    }
    await this.files.write(path.join(this.options.dir, names.zip ?? names.raw), stored);
    this.entries[shard] = {
      column_encodings: this.names.map((name) => this.options.columns[name]!),
      column_names: this.names,
      column_sizes: this.sizes,
      compression: this.compression.name,
      format: 'mds',
      hashes: this.hashes,
      raw_data: rawInfo,
      samples: samples.length,
      size_limit: this.sizeLimit,
      version: 2,
      zip_data: zipInfo,
    };
    this.summary.shards += 1;
    this.summary.samples += samples.length;
    this.summary.rawBytes += raw.length;
    this.summary.storedBytes += stored.length;
    this.options.onShard?.({
      index: shard,
      basename: names.zip ?? names.raw,
      samples: samples.length,
      rawBytes: raw.length,
      storedBytes: stored.length,
    });
  }

  /** Lands the last shard and writes index.json (the dataset is complete only then). */
  async finish(): Promise<MdsWriterSummary> {
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'finish called twice', { where: this.options.dir });
    if (this.samples.length > 0) await this.flush();
    await this.landing.settle();
    this.closed = true;
    const index = pythonJson({ shards: this.entries, version: 2 });
    await this.files.write(path.join(this.options.dir, 'index.json'), index);
    return { ...this.summary };
  }

  /** Stops writing: waits for the shard in flight, removes temporary files; writes no index.json. */
  async abort(): Promise<void> {
    this.closed = true;
    this.samples = [];
    await this.landing.drain();
    await this.files.removeTemporaries();
  }
}

export interface MdsSinkOptions {
  dir: string;
  dtype: 'uint16' | 'uint32';
  /** Also write column `boundaries` (ndarray:uint32): segment starts inside each sequence, always from 0. */
  boundaries: boolean;
  /** `none`, `zstd`, `zstd:N`. */
  compression: string;
  shardSize: number;
  hashes: string[];
  onShard?: (info: ShardInfo) => void;
}

export interface SinkSummary {
  shards: number;
  samples: number;
  tokens: number;
  rawBytes: number;
  storedBytes: number;
}

/** Segment starts with 0 first: a sequence always starts a segment, even mid-document. */
function segmentStarts(sequence: Sequence, where: string): Uint32Array {
  const starts = sequence.boundaries;
  if (!starts || starts.length === 0) return Uint32Array.of(0);
  for (let at = 1; at < starts.length; at += 1) {
    if (starts[at]! <= starts[at - 1]! || starts[at]! >= sequence.tokens.length) {
      throw new MegadocsError('BAD_INPUT', `boundaries are not increasing offsets inside the sequence`, {
        where,
      });
    }
  }
  if (starts[0] === 0) return starts;
  const withZero = new Uint32Array(starts.length + 1);
  withZero.set(starts, 1);
  return withZero;
}

/** The MDS sink stage: writes every sequence (column `tokens`, and `boundaries` when asked); resolves when index.json is written. */
export function mdsSink(options: MdsSinkOptions): (input: Highland.Stream<Sequence>) => Promise<SinkSummary> {
  return async (input) => {
    const columns: Record<string, string> = { tokens: `ndarray:${options.dtype}` };
    if (options.boundaries) columns.boundaries = 'ndarray:uint32';
    const writer = await MdsWriter.open({
      dir: options.dir,
      columns,
      compression: options.compression,
      sizeLimit: options.shardSize,
      hashes: options.hashes,
      onShard: options.onShard,
    });
    let tokens = 0;
    let count = 0;
    try {
      for await (const sequence of toAsyncIterable(input)) {
        const sample: Record<string, unknown> = { tokens: sequence.tokens };
        if (options.boundaries) sample.boundaries = segmentStarts(sequence, `sequence ${count}`);
        await writer.write(sample);
        tokens += sequence.tokens.length;
        count += 1;
      }
      const summary = await writer.finish();
      return {
        shards: summary.shards,
        samples: summary.samples,
        tokens,
        rawBytes: summary.rawBytes,
        storedBytes: summary.storedBytes,
      };
    } catch (error) {
      await writer.abort();
      throw error;
    }
  };
}
