// Token tables cached on disk, so a tokenizer pool starts in milliseconds instead of loading and indexing a rank
// table (~0.2 s of CPU, more when the cores are busy) on every run. One file per encoding and table format,
// read into shared memory; written atomically; a missing, stale or unreadable file is rebuilt, and a
// cache directory that cannot be written is simply not used. The caller says where (or false: no cache).
// Beside them, small JSON values (a tokenizer.json's facts for the main thread), cached the same way.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { TokenTables } from './token-tables.js';

/** Bumped whenever the layout of the tables or of this file changes. */
const FORMAT = 4;
const ALIGN = 8;

const ARRAY_TYPES = { Int32Array, Uint32Array, Uint16Array, Uint8Array } as const;
type ArrayType = keyof typeof ARRAY_TYPES;
type TypedArray = Int32Array | Uint32Array | Uint16Array | Uint8Array;

/** Where a typed array of the tables went: its place in the file's list of arrays. */
interface ArrayRef {
  $array: number;
  type: ArrayType;
  length: number;
}

interface Header {
  format: number;
  /** The tables as JSON, each typed array replaced by an ArrayRef; the arrays follow, each at an aligned offset. */
  shape: unknown;
}

/**
 * megadocs's cache directory: tables go in its `tokenizers/` folder; false turns the cache off; undefined is
 * ~/.cache/megadocs (the CLI reads MEGADOCS_CACHE_DIR and XDG_CACHE_HOME, see bin/environment.ts).
 */
export type CacheDir = string | false | undefined;

/** The tables cached under `key` (a file-name-safe identity of the encoding), built and cached when missing. */
export async function cachedTokenTables(
  key: string,
  build: () => Promise<TokenTables>,
  cacheDir: CacheDir,
): Promise<TokenTables> {
  const file = cacheFile(cacheDir, `${key}.v${FORMAT}.tables`);
  const cached = file && readTables(file);
  if (cached) return cached;
  const tables = await build();
  if (file) writeTables(file, tables);
  return tables;
}

/** `value` with each typed array replaced by an ArrayRef, the arrays pushed onto `arrays` in order. */
function shapeOf(value: unknown, arrays: TypedArray[]): unknown {
  if (ArrayBuffer.isView(value)) {
    const array = value as TypedArray;
    arrays.push(array);
    return { $array: arrays.length - 1, type: array.constructor.name as ArrayType, length: array.length };
  }
  if (Array.isArray(value)) return value.map((item) => shapeOf(item, arrays));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, shapeOf(item, arrays)]));
  }
  return value;
}

/** The inverse of shapeOf: each ArrayRef replaced by `view(ref)`. */
function fromShape(shape: unknown, view: (ref: ArrayRef) => TypedArray): unknown {
  if (Array.isArray(shape)) return shape.map((item) => fromShape(item, view));
  if (shape !== null && typeof shape === 'object') {
    if ('$array' in shape) return view(shape as ArrayRef);
    return Object.fromEntries(Object.entries(shape).map(([key, item]) => [key, fromShape(item, view)]));
  }
  return shape;
}

/** The path of the cache's file `name`; false when the cache is off. */
function cacheFile(cacheDir: CacheDir, name: string): string | false {
  const base = cacheDir ?? path.join(homedir(), '.cache', 'megadocs');
  return base !== false && path.join(base, 'tokenizers', name);
}

/**
 * A small JSON value cached under `key` beside the tables (e.g. what the main thread needs of a tokenizer),
 * built and cached when missing or unreadable; `value` must survive JSON.stringify and JSON.parse unchanged.
 */
export async function cachedJson<T>(key: string, build: () => Promise<T>, cacheDir: CacheDir): Promise<T> {
  const file = cacheFile(cacheDir, `${key}.v${FORMAT}.json`);
  if (file) {
    try {
      const cached = JSON.parse(readFileSync(file, 'utf8')) as { format: number; value: T };
      if (cached.format === FORMAT) return cached.value;
    } catch {
      // missing or unreadable: built again below
    }
  }
  const value = await build();
  if (file) writeAtomically(file, Buffer.from(JSON.stringify({ format: FORMAT, value })));
  return value;
}

const aligned = (offset: number) => Math.ceil(offset / ALIGN) * ALIGN;

/** Best effort: a cache that cannot be written only costs the next run the build. */
function writeTables(file: string, tables: TokenTables): void {
  const arrays: TypedArray[] = [];
  const header: Header = { format: FORMAT, shape: shapeOf(tables, arrays) };
  const json = Buffer.from(JSON.stringify(header));
  const parts: Uint8Array[] = [Buffer.from(Uint32Array.of(json.length).buffer), json];
  let offset = 4 + json.length;
  for (const array of arrays) {
    parts.push(new Uint8Array(aligned(offset) - offset));
    offset = aligned(offset) + array.byteLength;
    parts.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }
  writeAtomically(file, Buffer.concat(parts));
}

/** Best effort, as for the tables: a file that cannot be written is left out. */
function writeAtomically(file: string, contents: Buffer): void {
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(temporary, contents);
    renameSync(temporary, file);
  } catch {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // the directory itself is unusable: nothing was written
    }
  }
}

/** The tables in `file`, in shared memory; undefined when it is missing or not a complete file of this format. */
function readTables(file: string): TokenTables | undefined {
  try {
    const contents = readFileSync(file);
    const size = contents.length;
    const memory = new SharedArrayBuffer(size);
    const bytes = new Uint8Array(memory);
    bytes.set(contents);
    const jsonLength = new Uint32Array(memory, 0, 1)[0]!;
    const header = JSON.parse(Buffer.from(bytes.subarray(4, 4 + jsonLength)).toString()) as Header;
    if (header.format !== FORMAT) return undefined;
    let offset = 4 + jsonLength;
    let complete = true;
    const tables = fromShape(header.shape, (ref) => {
      const Type = ARRAY_TYPES[ref.type];
      offset = aligned(offset);
      if (!Type || offset + ref.length * Type.BYTES_PER_ELEMENT > size) {
        complete = false;
        return new Uint8Array(0);
      }
      // (TypeScript cannot type a union of typed-array constructors over a SharedArrayBuffer.)
      const view = new Type(memory as unknown as ArrayBuffer, offset, ref.length);
      offset += ref.length * Type.BYTES_PER_ELEMENT;
      return view;
    });
    return complete && offset === size ? (tables as TokenTables) : undefined;
  } catch {
    return undefined;
  }
}
