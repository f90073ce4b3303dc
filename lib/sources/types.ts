// What a source shard is, independent of where it lives (local disk or the Hugging Face Hub).
// Format readers only see a ShardRef, so a Hub shard and a local file are read by the same code.
import type { Readable } from 'node:stream';
import type { AsyncBuffer } from 'hyparquet';
import type { MegadocsError } from '../errors.js';

/** One input file: a local path or a remote object, opened lazily. */
export interface ShardRef {
  /** Shown in errors and progress: a path or an `hf://` URL. */
  name: string;
  /**
   * What document ids (`NAME:ROW`) and the run identity call the file (default: `name`): the same whatever the
   * working directory or the spelling of the path (expandLocalInput says how local files are named).
   */
  stableName?: string;
  /** Size in bytes, when known without opening it. */
  size?: number;
  /** The whole file as a byte stream (JSONL, JSON, compressed). */
  openStream(): Promise<Readable>;
  /** Random access for formats that need it (Parquet: footer first, then row groups by range). */
  openBuffer(): Promise<AsyncBuffer>;
}

/** What ids and the run identity call a shard. */
export function stableNameOf(shard: ShardRef): string {
  return shard.stableName ?? shard.name;
}

/** Options that say how records become documents. */
export interface RecordOptions {
  /** Field that holds the text (default `text`). */
  textField: string;
  /** Field that holds the id (default `id`); records without one get `FILE:ROW`. */
  idField: string;
  /** `fail` (default) stops at the first malformed record; `skip` counts it and goes on. */
  onError: 'fail' | 'skip';
}

/** Counters a source updates as it reads (shown in progress and the summary). */
export interface SourceStats {
  files: number;
  documents: number;
  bytes: number;
  skipped: number;
}

/** One record as a format reader yields it, before it becomes a Doc. */
export interface SourceRecord {
  /** The parsed record: an object for JSON formats and Parquet rows. */
  value: unknown;
  /** 0-based index of the record in its file (malformed records count too, so ids stay stable). */
  row: number;
  /** 1-based line where the record starts, for text formats. */
  line?: number;
}

/** What a format reader calls for a record it cannot use: throws under `fail`, counts it under `skip`. */
export type RejectRecord = (error: MegadocsError) => void;
