// The jsonl sink: one JSON object per line in `shard.NNNNN.jsonl.zst` (one zstd frame each, compressed as the
// shard fills) or `.jsonl`, spooled to disk, rolled at a raw size, landed atomically, with index.json written last
// (format "jsonl", version 1).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ZstdEngineChoice } from '../codecs/zstd.js';
import { MegadocsError } from '../errors.js';
import { toAsyncIterable } from '../stream.js';
import { AtomicFiles, OneInFlight } from './atomic.js';
import { landShard } from './land.js';
import { type Compression, parseCompression, type ShardInfo } from './mds.js';
import { ShardBody } from './shard-body.js';

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
  /** The zstd compressor (default native: libzstd when zstd-napi loads, else zstd-codec). */
  zstdEngine?: ZstdEngineChoice;
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

/** A jsonl dataset being written: lines spooled (and compressed) per shard, one shard landing while the next fills. */
export class JsonlWriter {
  private readonly files = new AtomicFiles();
  private readonly landing = new OneInFlight();
  private readonly entries: JsonlShardEntry[] = [];
  private body: ShardBody | undefined;
  private shardRecords = 0;
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

  /** Adds one record as a line; resolves once it is spooled (waits when a shard is landing). */
  async write(record: object): Promise<void> {
    if (this.closed)
      throw new MegadocsError('BAD_INPUT', 'write after finish or abort', { where: this.options.dir });
    this.landing.throwIfFailed();
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    if (this.body && this.body.bytes + line.length > this.options.shardSize) await this.flush();
    this.body ??= await ShardBody.create(
      this.files,
      this.shardPath(this.nextShard),
      this.compression,
      this.options.zstdEngine,
    );
    await this.body.append(line);
    this.shardRecords += 1;
  }

  private basename(shard: number): string {
    return `${this.options.prefix ?? 'shard'}.${String(shard).padStart(5, '0')}.jsonl${this.compression.name ? '.zst' : ''}`;
  }

  private shardPath(shard: number): string {
    return path.join(this.options.dir, this.basename(shard));
  }

  /** Ends the filled shard's body (and its frame) and hands the shard to the landing chain (one in flight). */
  private async flush(): Promise<void> {
    const shard = this.nextShard;
    const body = this.body!;
    await body.close();
    const records = this.shardRecords;
    this.nextShard += 1;
    this.body = undefined;
    this.shardRecords = 0;
    await this.landing.submit(() => this.land(shard, body, records));
  }

  private async land(shard: number, body: ShardBody, records: number): Promise<void> {
    const basename = this.basename(shard);
    const landed = await landShard({
      files: this.files,
      path: this.shardPath(shard),
      header: new Uint8Array(0),
      body,
      rawHashes: [],
      storedHashes: ['sha1'],
    });
    this.entries[shard] = {
      basename,
      records,
      raw_bytes: landed.raw.bytes,
      bytes: landed.stored.bytes,
      sha1: landed.stored.hashes.sha1!,
    };
    this.summary.shards += 1;
    this.summary.records += records;
    this.summary.rawBytes += landed.raw.bytes;
    this.summary.storedBytes += landed.stored.bytes;
    this.options.onShard?.({
      index: shard,
      basename,
      samples: records,
      rawBytes: landed.raw.bytes,
      storedBytes: landed.stored.bytes,
    });
  }

  /** Lands the last shard and writes index.json. */
  async finish(): Promise<JsonlSummary> {
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'finish called twice', { where: this.options.dir });
    if (this.body) await this.flush();
    await this.landing.settle();
    this.closed = true;
    const index: JsonlIndex = { version: 1, format: 'jsonl', shards: this.entries };
    await this.files.write(path.join(this.options.dir, 'index.json'), `${JSON.stringify(index)}\n`);
    return { ...this.summary };
  }

  /** Stops writing: waits for the shard in flight, removes temporary files, writes no index.json. */
  async abort(): Promise<void> {
    this.closed = true;
    await this.body?.remove();
    this.body = undefined;
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
