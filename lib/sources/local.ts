// Local inputs: a file, a directory (walked recursively) or a glob, expanded into sorted ShardRefs named stably.
// A local ShardRef opens the file only when a reader asks, as a stream or as ranged reads for Parquet.
import { createReadStream, type Dirent, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { AsyncBuffer } from 'hyparquet';
import { glob, isDynamicPattern } from 'tinyglobby';
import { MegadocsError, messageOf } from '../errors.js';
import { formatOf, requireFormat, SUPPORTED_EXTENSIONS } from './formats/detect.js';
import type { ShardRef } from './types.js';

/** Characters that may make a glob segment a pattern (or part of one spanning segments, like `{a/b,c}`). */
const GLOB_SPECIAL = /[*?[\]{}()!+@\\]/;

/** What megadocs writes in a run directory besides shards: manifest, indexes, mixture spec, journal, spill. */
const RUN_DIRECTORY_FILES = new Set(['megadocs.json', 'index.json', 'mixture.json', 'state', 'spill']);

/** Read size for byte streams: large enough that per-chunk work is noise next to parsing. */
const STREAM_CHUNK = 1 << 18;

export interface ExpandOptions {
  /** Told about each file a directory or glob held that has no supported format (it is left out). */
  onSkipped?: (file: string) => void;
}

/** A ShardRef for one local file; `name` is the path as given, `stableName` its base name unless told. */
export function localShard(file: string, size?: number, stableName = path.basename(file)): ShardRef {
  return {
    name: file,
    stableName,
    size,
    async openStream(): Promise<Readable> {
      // Opening errors (a missing file) arrive on the first read, where the reader names the file.
      return createReadStream(file, { highWaterMark: STREAM_CHUNK });
    },
    async openBuffer(): Promise<AsyncBuffer> {
      const { size: byteLength } = await statFile(file);
      return { byteLength, slice: (start, end) => readRange(file, start, end ?? byteLength) };
    },
  };
}

/**
 * The shards of one local input: the file itself, every supported file under a directory (recursively),
 * or every supported file a glob matches, sorted by path. An input that yields no shard is an error.
 * Stable names: a file's base name; below a directory (or a glob's fixed leading folders), the folder's own
 * name and the path inside it, so neither the working directory nor the spelling of the path changes them.
 */
export async function expandLocalInput(input: string, options: ExpandOptions = {}): Promise<ShardRef[]> {
  const stats = await fs.stat(input).catch(() => undefined);
  if (stats?.isFile()) {
    requireFormat(input);
    return [localShard(input, stats.size)];
  }
  const files = stats?.isDirectory()
    ? await walkDirectory(input)
    : isDynamicPattern(input)
      ? await glob(input, { onlyFiles: true, absolute: path.isAbsolute(input), expandDirectories: false })
      : undefined;
  if (files === undefined) {
    throw new MegadocsError('BAD_INPUT', 'no such file, directory or glob match', {
      where: input,
      hint: 'Check the path (relative paths are resolved from the current directory)',
    });
  }
  const supported = selectSupported(input, files.sort(byCodePoint), options);
  const root = path.resolve(stats?.isDirectory() ? input : globBase(input));
  return Promise.all(
    supported.map(async (file) => localShard(file, (await statFile(file)).size, nameBelow(root, file))),
  );
}

/** The leading folders of a glob, up to the first segment with a special character ('.' when it starts with one). */
function globBase(pattern: string): string {
  const segments = pattern.split('/');
  const fixed = segments.slice(
    0,
    segments.findIndex((segment) => GLOB_SPECIAL.test(segment)),
  );
  return fixed.length === 0 ? '.' : fixed.join('/') || '/';
}

/** `FOLDER/path/inside` for a file below the folder `root` (absolute), with `/` separators on every system. */
function nameBelow(root: string, file: string): string {
  const inside = path.relative(root, path.resolve(file)).split(path.sep);
  return [path.basename(root), ...inside].filter(Boolean).join('/');
}

function selectSupported(input: string, files: string[], options: ExpandOptions): string[] {
  const supported = files.filter((file) => formatOf(file) !== undefined);
  for (const file of files) if (formatOf(file) === undefined) options.onSkipped?.(file);
  if (supported.length > 0) return supported;
  const seen =
    files.length === 0 ? 'it matches no file' : `it holds only unsupported files (${listSome(files)})`;
  throw new MegadocsError('BAD_INPUT', `no input files: ${seen}`, {
    where: input,
    hint: `Supported extensions: ${SUPPORTED_EXTENSIONS}`,
  });
}

/**
 * Every file below `dir`, joined onto `dir` as given. Hidden entries are left out, like globs do, and so are
 * megadocs' own files inside a run directory (one that holds megadocs.json), so `pack OUT` reads only shards.
 */
async function walkDirectory(dir: string, insideRun = false): Promise<string[]> {
  const entries: Dirent[] = await fs.readdir(dir, { withFileTypes: true });
  const inRun = insideRun || entries.some((entry) => entry.name === 'megadocs.json');
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.') || (inRun && RUN_DIRECTORY_FILES.has(entry.name))) continue;
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walkDirectory(child, inRun)));
    else if (entry.isFile() || (entry.isSymbolicLink() && (await statFile(child)).isFile()))
      files.push(child);
  }
  return files;
}

async function readRange(file: string, start: number, end: number): Promise<ArrayBuffer> {
  const length = Math.max(0, end - start);
  const bytes = new Uint8Array(length);
  const handle = await openFile(file);
  try {
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(bytes, filled, length - filled, start + filled);
      if (bytesRead === 0)
        throw ioError(file, new Error(`file ended at byte ${start + filled}, expected ${end}`));
      filled += bytesRead;
    }
    return bytes.buffer;
  } catch (error) {
    throw error instanceof MegadocsError ? error : ioError(file, error);
  } finally {
    await handle.close();
  }
}

async function openFile(file: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (error) {
    throw ioError(file, error);
  }
}

async function statFile(file: string): Promise<Stats> {
  try {
    return await fs.stat(file);
  } catch (error) {
    throw ioError(file, error);
  }
}

function ioError(file: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `cannot read the file (${messageOf(error)})`, {
    where: file,
    hint: 'Check that the file exists and is readable',
    cause: error,
  });
}

function listSome(files: string[]): string {
  const shown = files.slice(0, 5).join(', ');
  return files.length > 5 ? `${shown} and ${files.length - 5} more` : shown;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
