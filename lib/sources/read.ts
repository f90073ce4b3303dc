// The stream of Docs from a list of shards: one shard open at a time, opened only when downstream pulls.
// Turns format records into Docs (text field, id field or NAME:ROW by the shard's stable name) and counts.
import { MegadocsError } from '../errors.js';
import { flattenArrays, fromAsyncIterable } from '../stream.js';
import type { Doc } from '../types.js';
import { decodedChunks } from './formats/decompress.js';
import { requireFormat } from './formats/detect.js';
import { jsonArrayRecords } from './formats/json-array.js';
import { jsonlRecords } from './formats/jsonl.js';
import { textRecords } from './formats/text.js';
import {
  type RecordOptions,
  type RejectRecord,
  type ShardRef,
  type SourceRecord,
  type SourceStats,
  stableNameOf,
} from './types.js';

export const DEFAULT_RECORD_OPTIONS: RecordOptions = { textField: 'text', idField: 'id', onError: 'fail' };

export type ReadOptions = Partial<RecordOptions> & { stats?: SourceStats };

/** A fresh set of source counters. */
export function emptySourceStats(): SourceStats {
  return { files: 0, documents: 0, bytes: 0, skipped: 0 };
}

/**
 * The Docs of all `shards`, in order, as a lazy highland stream: a shard is opened when the first of its
 * documents is pulled and closed when its last one has been read. Memory does not grow with file size.
 */
export function readDocs(shards: ShardRef[], options: ReadOptions = {}): Highland.Stream<Doc> {
  return fromAsyncIterable(docBatchesOfAll(shards, options)).through(flattenArrays());
}

/** The Docs of one shard, for library users who iterate shards themselves. */
export async function* iterateDocs(shard: ShardRef, options: ReadOptions = {}): AsyncGenerator<Doc> {
  for await (const batch of docBatches(shard, options)) yield* batch;
}

async function* docBatchesOfAll(shards: ShardRef[], options: ReadOptions): AsyncGenerator<Doc[]> {
  for (const shard of shards) yield* docBatches(shard, options);
}

/** The Docs of one shard in batches (one per chunk or row group): batches keep per-document overhead low. */
async function* docBatches(shard: ShardRef, options: ReadOptions): AsyncGenerator<Doc[]> {
  const record = { ...DEFAULT_RECORD_OPTIONS, ...withoutUndefined(options) };
  const stats = options.stats ?? emptySourceStats();
  const reject: RejectRecord = (error) => {
    if (record.onError === 'fail') throw error;
    stats.skipped += 1;
  };
  stats.files += 1;
  for await (const records of shardRecords(shard, record, stats, reject)) {
    const docs: Doc[] = [];
    for (const source of records) {
      const doc = toDoc(shard, source, record, reject);
      if (doc) docs.push(doc);
    }
    stats.documents += docs.length;
    if (docs.length > 0) yield docs;
  }
}

function shardRecords(
  shard: ShardRef,
  record: RecordOptions,
  stats: SourceStats,
  reject: RejectRecord,
): AsyncGenerator<SourceRecord[]> {
  const format = requireFormat(shard.name);
  if (format.container === 'parquet') return parquetBatches(shard, record, stats);
  const chunks = decodedChunks(shard, format, (count) => {
    stats.bytes += count;
  });
  if (format.container === 'jsonl') return jsonlRecords(shard.name, chunks, reject);
  if (format.container === 'json') return jsonArrayRecords(shard.name, chunks, reject);
  return textRecords(chunks, record.textField);
}

async function* parquetBatches(
  shard: ShardRef,
  record: RecordOptions,
  stats: SourceStats,
): AsyncGenerator<SourceRecord[]> {
  const buffer = await shard.openBuffer();
  const counted = {
    byteLength: buffer.byteLength,
    async slice(start: number, end?: number) {
      const bytes = await buffer.slice(start, end);
      stats.bytes += bytes.byteLength;
      return bytes;
    },
  };
  // Loaded for parquet inputs only (hyparquet and its codecs are a measurable part of start-up).
  const { parquetRecords } = await import('./formats/parquet.js');
  yield* parquetRecords(shard.name, counted, record);
}

/** A Doc from one record, or undefined when the record was rejected (and skipping is on). */
function toDoc(
  shard: ShardRef,
  source: SourceRecord,
  record: RecordOptions,
  reject: RejectRecord,
): Doc | undefined {
  const { name } = shard;
  const where = source.line === undefined ? `${name} row ${source.row}` : `${name}:${source.line}`;
  const value = source.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    reject(
      new MegadocsError('BAD_INPUT', `the record is ${describe(value)}, not a JSON object`, {
        where,
        hint: SKIP_HINT,
      }),
    );
    return undefined;
  }
  const fields = value as Record<string, unknown>;
  const text = fields[record.textField];
  if (typeof text !== 'string') {
    const problem = text === undefined ? 'has no field' : `has ${describe(text)} in field`;
    reject(
      new MegadocsError(
        'BAD_INPUT',
        `the record ${problem} "${record.textField}" (fields: ${listFields(fields)})`,
        {
          where,
          hint: `Pass --text-field with the field that holds the text, or --on-error skip to skip such records`,
        },
      ),
    );
    return undefined;
  }
  const id = idOf(fields[record.idField]);
  if (id === false) {
    reject(
      new MegadocsError(
        'BAD_INPUT',
        `the id field "${record.idField}" holds ${describe(fields[record.idField])}`,
        {
          where,
          hint: 'Pass --id-field with a field that holds strings or numbers, or --on-error skip',
        },
      ),
    );
    return undefined;
  }
  return { id: id ?? `${stableNameOf(shard)}:${source.row}`, text, meta: { source: name, row: source.row } };
}

const SKIP_HINT = 'Fix the input, or pass --on-error skip to skip malformed records';

/** The id as a string; undefined when there is none; false when it is of a type an id cannot be. */
function idOf(value: unknown): string | undefined | false {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value === undefined || value === null) return undefined;
  return false;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary data';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function listFields(fields: Record<string, unknown>): string {
  const names = Object.keys(fields);
  if (names.length === 0) return 'none';
  const shown = names.slice(0, 12).join(', ');
  return names.length > 12 ? `${shown} and ${names.length - 12} more` : shown;
}

function withoutUndefined(options: ReadOptions): Partial<RecordOptions> {
  return Object.fromEntries(
    Object.entries({
      textField: options.textField,
      idField: options.idField,
      onError: options.onError,
    }).filter(([, value]) => value !== undefined),
  );
}
