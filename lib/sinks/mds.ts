// Writes MosaicML Streaming (MDS) datasets: the MdsWriter (samples spooled to disk and compressed as they come,
// shards rolled at size_limit, landed atomically, index.json last) and mdsSink, the sink stage for packed sequences.
// Bytes in mds-format.ts.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { checkZstdLevel, ZSTD_DEFAULT_LEVEL, type ZstdEngineChoice } from '../codecs/zstd.js';
import { MegadocsError } from '../errors.js';
import { toAsyncIterable } from '../stream.js';
import type { Sequence } from '../types.js';
import { AtomicFiles, OneInFlight } from './atomic.js';
import { checkHashes } from './hashes.js';
import { landShard } from './land.js';
import {
  type ColumnEncoding,
  encodeColumn,
  encodeShardHeader,
  encodingSize,
  joinSample,
  type MdsFileInfo,
  type MdsShardEntry,
  parseEncoding,
  pythonJson,
  shardBasenames,
} from './mds-format.js';
import { ShardBody } from './shard-body.js';
import type { TokenDtype } from './token-dtype.js';

export { checkHashes, digests, supportedHashes } from './hashes.js';

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
  /** The zstd compressor (default native: libzstd when zstd-napi loads, else zstd-codec). */
  zstdEngine?: ZstdEngineChoice;
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
 * An MDS dataset being written. Samples go straight to a temporary body file, and with zstd to a compression
 * worker whose output goes to a second one (only their lengths stay in memory), until the next would push the
 * raw shard past size_limit; the body's frame then ends, and the shard is landed from those files, hashed and
 * assembled into one frame (at most one in flight) while the next one fills.
 * finish() writes index.json last; abort() leaves no index and no temporary file.
 */
export class MdsWriter {
  private readonly names: string[];
  private readonly encodings: ColumnEncoding[];
  private readonly sizes: Array<number | null>;
  private readonly config: Buffer;
  private readonly files = new AtomicFiles();
  private readonly entries: MdsShardEntry[] = [];
  private body: ShardBody | undefined;
  private sampleLengths = new Uint32Array(1024);
  private shardSamples = 0;
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
    if (this.shardSamples > 0 && this.shardBytes + added > this.sizeLimit) await this.flush();
    this.body ??= await ShardBody.create(
      this.files,
      this.shardPath(this.nextShard),
      this.compression,
      this.options.zstdEngine,
    );
    await this.body.append(encoded);
    if (this.shardSamples === this.sampleLengths.length) {
      const grown = new Uint32Array(this.sampleLengths.length * 2);
      grown.set(this.sampleLengths);
      this.sampleLengths = grown;
    }
    this.sampleLengths[this.shardSamples] = encoded.length;
    this.shardSamples += 1;
    this.shardBytes += added;
    this.written += 1;
  }

  /** Where shard `index` lands: the `.mds.zstd` name with compression, else the `.mds` one. */
  private shardPath(index: number): string {
    const names = shardBasenames(index, this.compression.name !== null);
    return path.join(this.options.dir, names.zip ?? names.raw);
  }

  private encodeSample(sample: Record<string, unknown>): Buffer {
    const columns = this.names.map((name, at) => {
      const where = `sample ${this.written}, column ${name}`;
      return encodeColumn(sample[name], this.encodings[at]!, this.sizes[at] !== null, where);
    });
    return joinSample(columns, this.sizes);
  }

  /**
   * Ends the filled shard's body (its frame ends before the next shard's starts) and hands the shard to the
   * landing chain; waits for the previous one first (one in flight).
   */
  private async flush(): Promise<void> {
    const shard = this.nextShard;
    const body = this.body!;
    await body.close();
    const header = encodeShardHeader(this.sampleLengths.subarray(0, this.shardSamples), this.config);
    const samples = this.shardSamples;
    this.nextShard += 1;
    this.body = undefined;
    this.shardSamples = 0;
    this.shardBytes = this.emptyShardBytes();
    await this.landing.submit(() => this.land(shard, header, body, samples));
  }

  private async land(shard: number, header: Buffer, body: ShardBody, samples: number): Promise<void> {
    const names = shardBasenames(shard, this.compression.name !== null);
    const landed = await landShard({
      files: this.files,
      path: this.shardPath(shard),
      header,
      body,
      rawHashes: this.hashes,
      storedHashes: names.zip ? this.hashes : [],
    });
    const zipInfo: MdsFileInfo | null = names.zip ? { basename: names.zip, ...landed.stored } : null;
    this.entries[shard] = {
      column_encodings: this.names.map((name) => this.options.columns[name]!),
      column_names: this.names,
      column_sizes: this.sizes,
      compression: this.compression.name,
      format: 'mds',
      hashes: this.hashes,
      raw_data: { basename: names.raw, ...landed.raw },
      samples,
      size_limit: this.sizeLimit,
      version: 2,
      zip_data: zipInfo,
    };
    this.summary.shards += 1;
    this.summary.samples += samples;
    this.summary.rawBytes += landed.raw.bytes;
    this.summary.storedBytes += landed.stored.bytes;
    this.options.onShard?.({
      index: shard,
      basename: names.zip ?? names.raw,
      samples,
      rawBytes: landed.raw.bytes,
      storedBytes: landed.stored.bytes,
    });
  }

  /** Lands the last shard and writes index.json (the dataset is complete only then). */
  async finish(): Promise<MdsWriterSummary> {
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'finish called twice', { where: this.options.dir });
    if (this.shardSamples > 0) await this.flush();
    await this.landing.settle();
    this.closed = true;
    const index = pythonJson({ shards: this.entries, version: 2 });
    await this.files.write(path.join(this.options.dir, 'index.json'), index);
    return { ...this.summary };
  }

  /** Stops writing: waits for the shard in flight, removes temporary files; writes no index.json. */
  async abort(): Promise<void> {
    this.closed = true;
    await this.body?.remove();
    this.body = undefined;
    this.shardSamples = 0;
    await this.landing.drain();
    await this.files.removeTemporaries();
  }
}

export interface MdsSinkOptions {
  dir: string;
  dtype: TokenDtype;
  /** Also write column `boundaries` (ndarray:uint32): segment starts inside each sequence, always from 0. */
  boundaries: boolean;
  /** `none`, `zstd`, `zstd:N`. */
  compression: string;
  /** The zstd compressor (default native: libzstd when zstd-napi loads, else zstd-codec). */
  zstdEngine?: ZstdEngineChoice;
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
      zstdEngine: options.zstdEngine,
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
