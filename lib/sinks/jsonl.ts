// The jsonl sink: one JSON object per line in `shard.NNNNN.jsonl.zst` (one zstd frame each) or `.jsonl`,
// rolled at a raw size, landed atomically, with index.json written last (format "jsonl", version 1).
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { zstdCompressFrameOffThread } from '../codecs/zstd.js';
import { MegadocsError } from '../errors.js';
import { toAsyncIterable } from '../stream.js';
import { AtomicFiles, OneInFlight } from './atomic.js';
import { type Compression, parseCompression, type ShardInfo } from './mds.js';

/** One entry of a jsonl dataset's index.json; `bytes` and `sha1` describe the stored file. */
export interface JsonlShardEntry {
  basename: string;
  records: number;
  raw_bytes: number;
  bytes: number;
  sha1: string;
}

export interface JsonlIndex {
  version: 1;
  format: 'jsonl';
  shards: JsonlShardEntry[];
}

export interface JsonlSinkOptions {
  dir: string;
  /** `none`, `zstd`, `zstd:N`. */
  compression: string;
  /** Raw (uncompressed) bytes per shard before the next one starts. */
  shardSize: number;
  /** Shard file name prefix (default `shard`). */
  prefix?: string;
  onShard?: (info: ShardInfo) => void;
}

export interface JsonlSummary {
  shards: number;
  records: number;
  rawBytes: number;
  storedBytes: number;
}

/** A jsonl dataset being written: lines buffered per shard, one shard landing while the next fills. */
export class JsonlWriter {
  private readonly files = new AtomicFiles();
  private readonly landing = new OneInFlight();
  private readonly entries: JsonlShardEntry[] = [];
  private lines: Buffer[] = [];
  private shardBytes = 0;
  private nextShard = 0;
  private closed = false;
  private readonly summary: JsonlSummary = { shards: 0, records: 0, rawBytes: 0, storedBytes: 0 };

  private constructor(
    private readonly options: JsonlSinkOptions,
    private readonly compression: Compression,
  ) {}

  /** Validates the options, creates the directory and removes a stale index.json. */
  static async open(options: JsonlSinkOptions): Promise<JsonlWriter> {
    const compression = parseCompression(options.compression);
    if (!Number.isInteger(options.shardSize) || options.shardSize <= 0) {
      throw new MegadocsError('BAD_OPTION', `shard size ${options.shardSize} is out of range`, {
        where: 'shard size',
        hint: 'Use a positive whole number of bytes',
      });
    }
    await mkdir(options.dir, { recursive: true });
    await rm(path.join(options.dir, 'index.json'), { force: true });
    return new JsonlWriter(options, compression);
  }

  /** Adds one record as a line; resolves once it is buffered (waits when a shard is landing). */
  async write(record: object): Promise<void> {
    if (this.closed)
      throw new MegadocsError('BAD_INPUT', 'write after finish or abort', { where: this.options.dir });
    this.landing.throwIfFailed();
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    if (this.lines.length > 0 && this.shardBytes + line.length > this.options.shardSize) await this.flush();
    this.lines.push(line);
    this.shardBytes += line.length;
  }

  private async flush(): Promise<void> {
    const lines = this.lines;
    const shard = this.nextShard;
    this.nextShard += 1;
    this.lines = [];
    this.shardBytes = 0;
    await this.landing.submit(() => this.land(shard, lines));
  }

  private async land(shard: number, lines: Buffer[]): Promise<void> {
    const raw = Buffer.concat(lines);
    const stored = this.compression.name
      ? await zstdCompressFrameOffThread(raw, this.compression.level)
      : raw;
    const basename = `${this.options.prefix ?? 'shard'}.${String(shard).padStart(5, '0')}.jsonl${this.compression.name ? '.zst' : ''}`;
    await this.files.write(path.join(this.options.dir, basename), stored);
    this.entries[shard] = {
      basename,
      records: lines.length,
      raw_bytes: raw.length,
      bytes: stored.length,
      sha1: createHash('sha1').update(stored).digest('hex'),
    };
    this.summary.shards += 1;
    this.summary.records += lines.length;
    this.summary.rawBytes += raw.length;
    this.summary.storedBytes += stored.length;
    this.options.onShard?.({
      index: shard,
      basename,
      samples: lines.length,
      rawBytes: raw.length,
      storedBytes: stored.length,
    });
  }

  /** Lands the last shard and writes index.json. */
  async finish(): Promise<JsonlSummary> {
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'finish called twice', { where: this.options.dir });
    if (this.lines.length > 0) await this.flush();
    await this.landing.settle();
    this.closed = true;
    const index: JsonlIndex = { version: 1, format: 'jsonl', shards: this.entries };
    await this.files.write(path.join(this.options.dir, 'index.json'), `${JSON.stringify(index)}\n`);
    return { ...this.summary };
  }

  /** Stops writing: waits for the shard in flight, removes temporary files, writes no index.json. */
  async abort(): Promise<void> {
    this.closed = true;
    this.lines = [];
    await this.landing.drain();
    await this.files.removeTemporaries();
  }
}

/** The jsonl sink stage: every record as one line; resolves when index.json is written. */
export function jsonlSink(
  options: JsonlSinkOptions,
): <T extends object>(input: Highland.Stream<T>) => Promise<JsonlSummary> {
  return async <T extends object>(input: Highland.Stream<T>) => {
    const writer = await JsonlWriter.open(options);
    try {
      for await (const record of toAsyncIterable(input)) await writer.write(record);
      return await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  };
}
