// Token tables cached on disk, so a tokenizer pool starts in milliseconds instead of loading and indexing a rank
// table (~0.2 s of CPU, more when the cores are busy) on every run. One file per encoding and table format,
// read into shared memory; written atomically; a missing, stale or unreadable file is rebuilt, and a
// cache directory that cannot be written is simply not used. The caller says where (or false: no cache).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { TokenTables } from './token-tables.js';

/** Bumped whenever the layout of the tables or of this file changes. */
const FORMAT = 1;
const ALIGN = 8;

type ArrayName =
  | 'pieceSlots'
  | 'pieceUnitStart'
  | 'pieceIds'
  | 'pieceUnits'
  | 'byteSlots'
  | 'byteStart'
  | 'bytes';
const ARRAY_TYPES = {
  pieceSlots: Int32Array,
  pieceUnitStart: Uint32Array,
  pieceIds: Uint32Array,
  pieceUnits: Uint16Array,
  byteSlots: Int32Array,
  byteStart: Uint32Array,
  bytes: Uint8Array,
} as const;

interface Header {
  format: number;
  facts: TokenTables['facts'];
  split: TokenTables['split'];
  maxCachedPieces: number;
  /** Each array's element count; they follow the header in this order, each at an aligned offset. */
  lengths: Record<ArrayName, number>;
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
  const base = cacheDir ?? path.join(homedir(), '.cache', 'megadocs');
  const file = base !== false && path.join(base, 'tokenizers', `${key}.v${FORMAT}.tables`);
  const cached = file && readTables(file);
  if (cached) return cached;
  const tables = await build();
  if (file) writeTables(file, tables);
  return tables;
}

function arraysOf(tables: TokenTables): Record<ArrayName, ArrayBufferView & { length: number }> {
  return {
    pieceSlots: tables.pieces.slots,
    pieceUnitStart: tables.pieces.unitStart,
    pieceIds: tables.pieces.ids,
    pieceUnits: tables.pieces.units,
    byteSlots: tables.bytes.slots,
    byteStart: tables.bytes.start,
    bytes: tables.bytes.bytes,
  };
}

const aligned = (offset: number) => Math.ceil(offset / ALIGN) * ALIGN;

/** Best effort: a cache that cannot be written only costs the next run the build. */
function writeTables(file: string, tables: TokenTables): void {
  const arrays = arraysOf(tables);
  const header: Header = {
    format: FORMAT,
    facts: tables.facts,
    split: tables.split,
    maxCachedPieces: tables.pieces.maxCachedPieces,
    lengths: Object.fromEntries(
      Object.entries(arrays).map(([name, array]) => [name, array.length]),
    ) as Header['lengths'],
  };
  const json = Buffer.from(JSON.stringify(header));
  const parts: Uint8Array[] = [Buffer.from(Uint32Array.of(json.length).buffer), json];
  let offset = 4 + json.length;
  for (const array of Object.values(arrays)) {
    parts.push(new Uint8Array(aligned(offset) - offset));
    offset = aligned(offset) + array.byteLength;
    parts.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(temporary, Buffer.concat(parts));
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
    const views = {} as Record<ArrayName, ArrayBufferView>;
    for (const name of Object.keys(ARRAY_TYPES) as ArrayName[]) {
      const Type = ARRAY_TYPES[name];
      offset = aligned(offset);
      const length = header.lengths[name];
      if (offset + length * Type.BYTES_PER_ELEMENT > size) return undefined;
      // (TypeScript cannot type a union of typed-array constructors over a SharedArrayBuffer.)
      views[name] = new Type(memory as unknown as ArrayBuffer, offset, length);
      offset += length * Type.BYTES_PER_ELEMENT;
    }
    if (offset !== size) return undefined;
    return {
      facts: header.facts,
      split: header.split,
      pieces: {
        slots: views.pieceSlots as Int32Array,
        unitStart: views.pieceUnitStart as Uint32Array,
        ids: views.pieceIds as Uint32Array,
        units: views.pieceUnits as Uint16Array,
        maxCachedPieces: header.maxCachedPieces,
      },
      bytes: {
        slots: views.byteSlots as Int32Array,
        start: views.byteStart as Uint32Array,
        bytes: views.bytes as Uint8Array,
      },
    };
  } catch {
    return undefined;
  }
}
