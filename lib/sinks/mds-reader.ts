// Reads MDS datasets back: index.json, one shard at a time (decompressed whole), samples decoded per column.
// Used by tests, inspect and feed; errors name the shard (or index.json) and what is wrong with it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { zstdDecompress } from '../codecs/zstd.js';
import { MegadocsError, messageOf } from '../errors.js';
import {
  type ColumnEncoding,
  decodeNdarray,
  encodingSize,
  type MdsIndex,
  type MdsShardEntry,
  parseEncoding,
  readShardLayout,
  splitSample,
} from './mds-format.js';

/** A decoded column value: typed array (ndarray, flattened), string (str), Buffer (bytes), number|bigint (int), any (json). */
export type MdsValue = ArrayBufferView | string | number | bigint | unknown;
export type MdsSample = Record<string, MdsValue>;

/** Reads and parses `dir/index.json` (MDS version 2); throws naming the file when it is missing or malformed. */
export async function readMdsIndex(dir: string): Promise<MdsIndex> {
  const file = path.join(dir, 'index.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new MegadocsError('BAD_INPUT', `cannot read the dataset index (${messageOf(error)})`, {
      where: file,
      hint: 'Point at a complete dataset directory: index.json is written last, when the dataset is complete',
    });
  }
  let index: MdsIndex;
  try {
    index = JSON.parse(text) as MdsIndex;
  } catch (error) {
    throw new MegadocsError('CORRUPT', `index.json is not valid JSON (${messageOf(error)})`, { where: file });
  }
  if (index?.version !== 2 || !Array.isArray(index.shards)) {
    throw new MegadocsError('CORRUPT', 'not an MDS index (needs "version": 2 and a "shards" list)', {
      where: file,
    });
  }
  return index;
}

/** The shard's display name: its stored basename. */
export function shardName(entry: MdsShardEntry): string {
  return (entry.zip_data ?? entry.raw_data)?.basename ?? '(shard without raw_data)';
}

/** The raw (uncompressed) bytes of a shard: the stored file, decompressed when it is zstd. */
export async function readRawShard(dir: string, entry: MdsShardEntry): Promise<Buffer> {
  const name = shardName(entry);
  const file = path.join(dir, name);
  let stored: Buffer;
  try {
    stored = await readFile(file);
  } catch (error) {
    throw new MegadocsError('BAD_INPUT', `cannot read the shard (${messageOf(error)})`, {
      where: file,
      hint: 'The index names a shard that is not there: copy the whole dataset directory',
    });
  }
  if (!entry.zip_data) return stored;
  if (entry.compression === null || !entry.compression.startsWith('zstd')) {
    throw new MegadocsError('BAD_INPUT', `unsupported compression ${JSON.stringify(entry.compression)}`, {
      where: name,
      hint: 'Only zstd-compressed MDS shards can be read here',
    });
  }
  try {
    return zstdDecompress(stored);
  } catch (error) {
    throw new MegadocsError('CORRUPT', `the shard does not decompress (${messageOf(error)})`, {
      where: name,
    });
  }
}

/** A shard in memory with a lazy per-sample decoder. */
export interface MdsShard {
  name: string;
  count: number;
  /** The bytes of sample `at` (all columns, as stored). */
  sampleBytes(at: number): Uint8Array;
  /** Sample `at` decoded column by column. */
  sample(at: number): MdsSample;
}

/** How to decode one shard's samples, from its index entry's column lists. */
export function columnDecoders(entry: MdsShardEntry): {
  names: string[];
  encodings: ColumnEncoding[];
  sizes: Array<number | null>;
} {
  const name = shardName(entry);
  const names = entry.column_names;
  const encodings = entry.column_encodings.map((encoding, at) =>
    parseEncoding(encoding, `${name}: column ${names[at]}`),
  );
  const sizes = encodings.map(encodingSize);
  return { names, encodings, sizes };
}

/** Decodes one column's bytes; `where` names the shard, sample and column in errors. */
export function decodeColumn(bytes: Uint8Array, encoding: ColumnEncoding, where: string): MdsValue {
  switch (encoding.kind) {
    case 'ndarray':
      return decodeNdarray(bytes, encoding, where).values;
    case 'str':
      return Buffer.from(bytes).toString('utf8');
    case 'bytes':
      return Buffer.from(bytes);
    case 'int': {
      const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigInt64LE(0);
      return value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER ? Number(value) : value;
    }
    case 'json':
      try {
        return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
      } catch (error) {
        throw new MegadocsError('CORRUPT', `json column does not parse (${messageOf(error)})`, { where });
      }
  }
}

/** Reads one shard whole and checks its sample table against the index entry. */
export async function readMdsShard(dir: string, entry: MdsShardEntry): Promise<MdsShard> {
  const name = shardName(entry);
  const raw = await readRawShard(dir, entry);
  const { count, offsets } = readShardLayout(raw, name);
  if (count !== entry.samples) {
    throw new MegadocsError('CORRUPT', `the shard holds ${count} samples, index.json says ${entry.samples}`, {
      where: name,
    });
  }
  const { names, encodings, sizes } = columnDecoders(entry);
  const sampleBytes = (at: number) => raw.subarray(offsets[at]!, offsets[at + 1]!);
  return {
    name,
    count,
    sampleBytes,
    sample(at) {
      const where = `${name}: sample ${at}`;
      const columns = splitSample(sampleBytes(at), sizes, where);
      return Object.fromEntries(
        names.map((column, position) => [
          column,
          decodeColumn(columns[position]!, encodings[position]!, `${where}, column ${column}`),
        ]),
      );
    },
  };
}

/** Every sample of the dataset in storage order, one shard in memory at a time. */
export async function* iterateMdsSamples(dir: string): AsyncGenerator<MdsSample> {
  const index = await readMdsIndex(dir);
  for (const entry of index.shards) {
    const shard = await readMdsShard(dir, entry);
    for (let at = 0; at < shard.count; at += 1) yield shard.sample(at);
  }
}
