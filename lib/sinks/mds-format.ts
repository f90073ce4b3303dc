// The MosaicML Streaming (MDS) byte layout of FORMATS.md: column encodings, samples, shard files, index entries.
// Pure functions over bytes, shared by the writer, the reader, inspect and feed; no I/O here.
import { MegadocsError } from '../errors.js';

/** The keys every index.json shard entry has, exactly (the reader passes them as keyword arguments). */
export const SHARD_ENTRY_KEYS = [
  'column_encodings',
  'column_names',
  'column_sizes',
  'compression',
  'format',
  'hashes',
  'raw_data',
  'samples',
  'size_limit',
  'version',
  'zip_data',
] as const;

export interface MdsFileInfo {
  basename: string;
  bytes: number;
  hashes: Record<string, string>;
}

/** One entry of index.json `shards`. */
export interface MdsShardEntry {
  column_encodings: string[];
  column_names: string[];
  column_sizes: Array<number | null>;
  compression: string | null;
  format: 'mds';
  hashes: string[];
  raw_data: MdsFileInfo;
  samples: number;
  size_limit: number | null;
  version: 2;
  zip_data: MdsFileInfo | null;
}

export interface MdsIndex {
  shards: MdsShardEntry[];
  version: 2;
}

export type NumericDtype = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type NumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

const DTYPES: Record<
  NumericDtype,
  { new (length: number): NumericArray; new (buffer: ArrayBuffer): NumericArray; BYTES_PER_ELEMENT: number }
> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** A parsed column encoding: `ndarray:DTYPE[:SHAPE]`, `str`, `bytes`, `int` or `json`. */
export type ColumnEncoding =
  | { kind: 'ndarray'; dtype: NumericDtype; shape?: number[] }
  | { kind: 'str' | 'bytes' | 'json' }
  | { kind: 'int' };

/** Parses an encoding name; throws BAD_INPUT naming `where` for encodings this toolkit does not handle. */
export function parseEncoding(name: string, where: string): ColumnEncoding {
  if (name === 'str' || name === 'bytes' || name === 'json') return { kind: name };
  if (name === 'int') return { kind: 'int' };
  const [kind, dtype, shape, ...rest] = name.split(':');
  if (kind === 'ndarray' && dtype && dtype in DTYPES && rest.length === 0) {
    if (shape === undefined) return { kind: 'ndarray', dtype: dtype as NumericDtype };
    const dims = shape.split(',').map(Number);
    if (dims.every((dim) => Number.isInteger(dim) && dim >= 1)) {
      return { kind: 'ndarray', dtype: dtype as NumericDtype, shape: dims };
    }
  }
  throw new MegadocsError('BAD_INPUT', `unsupported column encoding "${name}"`, {
    where,
    hint: `Supported: str, bytes, int, json, ndarray:DTYPE[:SHAPE] with DTYPE one of ${Object.keys(DTYPES).join(', ')}`,
  });
}

/** The fixed byte size of a column (`column_sizes`), or null for variable-size columns. */
export function encodingSize(encoding: ColumnEncoding): number | null {
  if (encoding.kind === 'int') return 8;
  if (encoding.kind === 'ndarray' && encoding.shape) {
    return encoding.shape.reduce((a, b) => a * b, 1) * DTYPES[encoding.dtype].BYTES_PER_ELEMENT;
  }
  return null;
}

function fail(where: string, message: string): never {
  throw new MegadocsError('CORRUPT', message, { where });
}

/** The ndarray bytes of a 1-D array: `(1 << 2) | shape_code`, the length in the smallest uint that fits, the values. */
export function encodeNdarray(values: NumericArray, fixed: boolean): Buffer {
  const data = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  if (fixed) return data;
  const length = values.length;
  const code = length < 1 << 8 ? 0 : length < 1 << 16 ? 1 : 2;
  const header = Buffer.alloc(1 + (1 << code));
  header[0] = (1 << 2) | code;
  header.writeUIntLE(length, 1, 1 << code);
  return Buffer.concat([header, data]);
}

/** One column value as MDS bytes; `where` names the sample and column in errors (wrong type, empty, overflow). */
export function encodeColumn(
  value: unknown,
  encoding: ColumnEncoding,
  fixed: boolean,
  where: string,
): Buffer {
  const bad = (expected: string): never => {
    throw new MegadocsError('BAD_INPUT', `expected ${expected}, got ${describe(value)}`, { where });
  };
  switch (encoding.kind) {
    case 'ndarray': {
      if (!ArrayBuffer.isView(value) || value instanceof DataView) return bad('a typed array');
      const values = toDtype(value as NumericArray, encoding.dtype, where);
      if (values.length === 0) {
        throw new MegadocsError('BAD_INPUT', 'empty array (MDS cannot store empty ndarrays)', {
          where,
          hint: 'Drop empty samples before the sink',
        });
      }
      const expected = encoding.shape?.reduce((a, b) => a * b, 1);
      if (expected !== undefined && values.length !== expected) bad(`${expected} values`);
      return encodeNdarray(values, fixed);
    }
    case 'str':
      return typeof value === 'string' ? Buffer.from(value, 'utf8') : bad('a string');
    case 'bytes':
      return value instanceof Uint8Array ? Buffer.from(value) : bad('bytes');
    case 'json':
      return Buffer.from(JSON.stringify(value), 'utf8');
    case 'int': {
      if (typeof value !== 'number' && typeof value !== 'bigint') return bad('an integer');
      const out = Buffer.alloc(8);
      out.writeBigInt64LE(BigInt(value));
      return out;
    }
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return ArrayBuffer.isView(value) ? value.constructor.name : typeof value;
}

/** `values` as the column's dtype; integer narrowing checks that every value fits. */
function toDtype(values: NumericArray, dtype: NumericDtype, where: string): NumericArray {
  const Type = DTYPES[dtype];
  if (values instanceof Type) return values;
  const converted = new Type(values.length);
  converted.set(values);
  for (let at = 0; at < values.length; at += 1) {
    if (converted[at] !== values[at]) {
      throw new MegadocsError('BAD_INPUT', `value ${values[at]} at position ${at} does not fit ${dtype}`, {
        where,
        hint: dtype === 'uint16' ? 'Use uint32 tokens: the vocabulary has ids of 65536 and above' : undefined,
      });
    }
  }
  return converted;
}

/** Decodes ndarray bytes into a flat typed array (copied, so aligned) and its shape; checks every length. */
export function decodeNdarray(
  bytes: Uint8Array,
  encoding: { dtype: NumericDtype; shape?: number[] },
  where: string,
): { shape: number[]; values: NumericArray } {
  const Type = DTYPES[encoding.dtype];
  let shape = encoding.shape;
  let start = 0;
  if (!shape) {
    if (bytes.length < 1) fail(where, 'empty ndarray column (no shape header)');
    const ndim = bytes[0]! >> 2;
    const width = 1 << (bytes[0]! & 3);
    start = 1 + ndim * width;
    if (ndim === 0) fail(where, 'ndarray header declares 0 dimensions');
    if (bytes.length < start)
      fail(where, `ndarray shape needs ${start} bytes, the column has ${bytes.length}`);
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    shape = [];
    for (let dim = 0; dim < ndim; dim += 1) {
      const offset = 1 + dim * width;
      shape.push(width === 8 ? Number(view.readBigUInt64LE(offset)) : view.readUIntLE(offset, width));
    }
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count === 0) fail(where, 'empty ndarray (a dimension is 0)');
  const expected = start + count * Type.BYTES_PER_ELEMENT;
  if (bytes.length !== expected) {
    fail(
      where,
      `ndarray of shape [${shape.join(', ')}] ${encoding.dtype} needs ${expected} bytes, the column has ${bytes.length}`,
    );
  }
  const copy = new ArrayBuffer(count * Type.BYTES_PER_ELEMENT);
  new Uint8Array(copy).set(bytes.subarray(start));
  return { shape, values: new Type(copy) };
}

/** Splits one sample into its columns' bytes (variable-size columns are length-prefixed, in column order). */
export function splitSample(sample: Uint8Array, sizes: Array<number | null>, where: string): Uint8Array[] {
  const view = Buffer.from(sample.buffer, sample.byteOffset, sample.byteLength);
  const variable = sizes.filter((size) => size === null).length;
  if (view.length < 4 * variable)
    fail(where, `sample has ${view.length} bytes, too few for ${variable} column lengths`);
  let prefix = 0;
  const lengths = sizes.map((size) => {
    if (size !== null) return size;
    prefix += 4;
    return view.readUInt32LE(prefix - 4);
  });
  const columns: Uint8Array[] = [];
  let offset = prefix;
  for (const length of lengths) {
    if (offset + length > view.length)
      fail(where, `sample columns need ${offset + length} bytes, the sample has ${view.length}`);
    columns.push(sample.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== view.length) fail(where, `sample has ${view.length - offset} bytes after its last column`);
  return columns;
}

/** Joins encoded columns into one sample: the u32 length of each variable-size column, then all columns. */
export function joinSample(columns: Buffer[], sizes: Array<number | null>): Buffer {
  const lengths = columns.filter((_, at) => sizes[at] === null).map((column) => column.length);
  const head = Buffer.from(new Uint32Array(lengths).buffer);
  return Buffer.concat([head, ...columns]);
}

/** What precedes the samples in a raw shard file: u32 N, u32 offsets[N + 1] (absolute), the config JSON. */
export function encodeShardHeader(sampleLengths: Uint32Array, config: Uint8Array): Buffer {
  const count = sampleLengths.length;
  const header = Buffer.alloc(4 + 4 * (count + 1) + config.length);
  header.writeUInt32LE(count, 0);
  let offset = 4 + 4 * (count + 1) + config.length;
  for (let at = 0; at <= count; at += 1) {
    header.writeUInt32LE(offset, 4 + 4 * at);
    offset += sampleLengths[at] ?? 0;
  }
  header.set(config, 4 + 4 * (count + 1));
  return header;
}

/** The whole raw shard file in memory: the header, then the samples. */
export function encodeShard(samples: Buffer[], config: Buffer): Buffer {
  const header = encodeShardHeader(
    Uint32Array.from(samples, (sample) => sample.length),
    config,
  );
  return Buffer.concat([header, ...samples]);
}

/** The sample table of a raw shard, checked: N, monotonic offsets, the last one at the end of the file. */
export function readShardLayout(raw: Uint8Array, where: string): { count: number; offsets: Uint32Array } {
  const view = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (view.length < 8)
    fail(where, `shard has ${view.length} bytes, too few for a sample count and one offset`);
  const count = view.readUInt32LE(0);
  const tableEnd = 4 + 4 * (count + 1);
  if (tableEnd > view.length)
    fail(where, `shard declares ${count} samples but has only ${view.length} bytes`);
  const offsets = new Uint32Array(count + 1);
  for (let at = 0; at <= count; at += 1) offsets[at] = view.readUInt32LE(4 + 4 * at);
  if (offsets[0]! < tableEnd) fail(where, `first sample offset ${offsets[0]} points inside the offset table`);
  for (let at = 1; at <= count; at += 1) {
    if (offsets[at]! < offsets[at - 1]!) fail(where, `sample offsets decrease at sample ${at - 1}`);
  }
  if (offsets[count] !== view.length) {
    fail(
      where,
      `last sample offset is ${offsets[count]} but the shard has ${view.length} bytes (truncated or padded)`,
    );
  }
  return { count, offsets };
}

/** JSON text the way python's `json.dumps(value, sort_keys=True)` writes it (the MDS writer's own style). */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${asciiJson(key)}: ${pythonJson(item)}`).join(', ')}}`;
  }
  if (typeof value === 'string') return asciiJson(value);
  return JSON.stringify(value);
}

function asciiJson(text: string): string {
  return JSON.stringify(text).replace(
    /[^\x20-\x7e]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `shard.00007.mds` (the raw name) and `shard.00007.mds.zstd` (the stored name with compression). */
export function shardBasenames(index: number, compressed: boolean): { raw: string; zip: string | null } {
  const raw = `shard.${String(index).padStart(5, '0')}.mds`;
  return { raw, zip: compressed ? `${raw}.zstd` : null };
}
