// Validates a written dataset (MDS or jsonl against index.json, Megatron .bin/.idx pairs, memmap parts) file by
// file and reports what it holds: shards, samples, tokens per sample, raw vs stored bytes; decodes samples.
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseZstdFrameHeader, zstdDecompress, zstdFrameLengths } from './codecs/zstd.js';
import { MegadocsError, messageOf } from './errors.js';
import type { TokenizerDownloadOptions } from './hub/tokenizer-download.js';
import { MIXTURE_FILE } from './pipeline/run-write.js';
import type { JsonlShardEntry } from './sinks/jsonl.js';
import { digests, supportedHashes } from './sinks/mds.js';
import {
  encodingSize,
  type MdsShardEntry,
  parseEncoding,
  readShardLayout,
  SHARD_ENTRY_KEYS,
  splitSample,
} from './sinks/mds-format.js';
import { columnDecoders, decodeColumn } from './sinks/mds-reader.js';
import { megatronFiles, parseMegatronIndex } from './sinks/megatron-format.js';
import { MEMMAP_INDEX, type MemmapIndex } from './sinks/memmap.js';
import { loadEncoder } from './tokenize/encoders.js';

export interface InspectOptions {
  /** Decode the first N samples' tokens to text (MDS) or show the first N records' text (jsonl). */
  decode?: number;
  /** Tokenizer spec for decoding; default: `options.tokenizer` of the run's megadocs.json (see DatasetWriter). */
  tokenizer?: string;
  /** Where an `hf:` tokenizer is downloaded from and to (see loadEncoder). */
  hubTokenizer?: TokenizerDownloadOptions;
}

/**
 * The megadocs run that wrote a dataset, from its megadocs.json: in DIR itself, or in the run directory above
 * DIR for a stream of a `--streams separate` run (OUT/real/, OUT/synthetic/).
 */
export interface DatasetWriter {
  /** `pack`, `generate` or `run` (undefined in a megadocs.json that does not say). */
  command?: string;
  /** The run directory: the `--out` a rerun takes. */
  runDir: string;
  /** The tokenizer it packed with (`tiktoken:PATH` with an absolute PATH). */
  tokenizer?: string;
}

export interface InspectReport {
  dir: string;
  format: 'mds' | 'jsonl' | 'megatron' | 'memmap';
  valid: boolean;
  /** Every problem found, each naming the shard (or index.json) and what is wrong. */
  problems: string[];
  shards: number;
  /** Samples (MDS) or records (jsonl). */
  samples: number;
  /** Values in the `tokens` column (MDS only). */
  tokens: number;
  minTokens: number | null;
  maxTokens: number | null;
  columns: string[];
  compression: string | null;
  rawBytes: number;
  storedBytes: number;
  /** rawBytes / storedBytes. */
  compressionRatio: number;
  decoded: Array<{ sample: number; text: string }>;
  /** The run that wrote the dataset, when its megadocs.json is there (null otherwise). */
  writer: DatasetWriter | null;
}

type Problem = (where: string, message: string) => void;

/** A problem in one shard: recorded, and the rest of that shard is skipped. */
class ShardProblem extends Error {}

const sameKeys = (value: unknown, keys: readonly string[]) =>
  value !== null &&
  typeof value === 'object' &&
  !Array.isArray(value) &&
  Object.keys(value).sort().join(',') === [...keys].sort().join(',');

const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;
const isStrings = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

/** Inspects `dir` (index.json and every shard); never throws for a damaged dataset, it lists the problems. */
export async function inspectDataset(dir: string, options: InspectOptions = {}): Promise<InspectReport> {
  const indexFile = path.join(dir, 'index.json');
  const megatronPrefixes = await megatronPairs(dir);
  if (megatronPrefixes.length > 0) return inspectMegatron(dir, megatronPrefixes, options);
  const memmapIndex = await readJson(path.join(dir, MEMMAP_INDEX));
  if (memmapIndex !== undefined) return inspectMemmap(dir, memmapIndex, options);
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexFile, 'utf8'));
  } catch (error) {
    const streams = await separateStreams(dir);
    if (streams) {
      throw new MegadocsError('BAD_INPUT', 'holds the two datasets of a `--streams separate` run, not one', {
        where: dir,
        hint: `Inspect each of them: ${streams.map((stream) => `megadocs inspect ${stream}`).join(', then ')}`,
      });
    }
    throw new MegadocsError('BAD_INPUT', `cannot read index.json (${messageOf(error)})`, {
      where: indexFile,
      hint: 'Point at a complete dataset directory: index.json is written last, when every shard is there',
    });
  }
  const report = await emptyReport(
    dir,
    (index as { format?: unknown })?.format === 'jsonl' ? 'jsonl' : 'mds',
  );
  const problem: Problem = (where, message) => {
    report.problems.push(`${where}: ${message}`);
  };
  if (report.format === 'jsonl') await inspectJsonl(dir, index, report, problem, options);
  else await inspectMds(dir, index, report, problem, options);
  return finished(report);
}

async function emptyReport(dir: string, format: InspectReport['format']): Promise<InspectReport> {
  return {
    dir,
    format,
    valid: true,
    problems: [],
    shards: 0,
    samples: 0,
    tokens: 0,
    minTokens: null,
    maxTokens: null,
    columns: [],
    compression: null,
    rawBytes: 0,
    storedBytes: 0,
    compressionRatio: 0,
    decoded: [],
    writer: await datasetWriter(dir),
  };
}

function finished(report: InspectReport): InspectReport {
  report.valid = report.problems.length === 0;
  report.compressionRatio = report.storedBytes > 0 ? report.rawBytes / report.storedBytes : 0;
  return report;
}

/** The prefixes of the Megatron files in `dir` (a .bin or an .idx; a .bin alone is reported as unfinished). */
async function megatronPairs(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const prefixes = names.filter((name) => /\.(bin|idx)$/.test(name)).map((name) => name.slice(0, -4));
  return [...new Set(prefixes)].sort();
}

/** Checks memmap.json and each part: whole rows of seq_len ids, the byte size, the spans file; decodes rows. */
async function inspectMemmap(dir: string, json: unknown, options: InspectOptions): Promise<InspectReport> {
  const report = await emptyReport(dir, 'memmap');
  const index = json as MemmapIndex;
  const width = index?.dtype === 'uint16' ? 2 : index?.dtype === 'uint32' || index?.dtype === 'int32' ? 4 : 0;
  if (width === 0 || !isCount(index.seq_len) || index.seq_len === 0 || !Array.isArray(index.files)) {
    report.problems.push(
      `${path.join(dir, MEMMAP_INDEX)}: needs dtype uint16, uint32 or int32, seq_len and files`,
    );
    return finished(report);
  }
  report.shards = index.files.length;
  const decodeIds: Array<{ sample: number; ids: ArrayLike<number> }> = [];
  for (const file of index.files) {
    const name = path.join(dir, String(file?.path));
    try {
      if (!isCount(file.tokens) || file.tokens !== file.sequences * index.seq_len)
        throw new ShardProblem(
          `memmap.json says ${file.tokens} tokens in ${file.sequences} rows of ${index.seq_len}`,
        );
      const data = await readFile(name).catch((error) => {
        throw new ShardProblem(`cannot be read (${messageOf(error)})`);
      });
      if (data.length !== file.tokens * width)
        throw new ShardProblem(
          `has ${data.length} bytes, memmap.json says ${file.tokens} ${index.dtype} ids`,
        );
      if (file.spans !== null)
        checkSpans(await readFile(path.join(dir, file.spans)).catch(() => undefined), file);
      const ids =
        width === 2
          ? new Uint16Array(data.buffer, data.byteOffset, file.tokens)
          : new Uint32Array(data.buffer, data.byteOffset, file.tokens);
      for (let row = 0; row < file.sequences; row += 1) {
        if (decodeIds.length < (options.decode ?? 0))
          decodeIds.push({
            sample: report.samples,
            ids: ids.subarray(row * index.seq_len, (row + 1) * index.seq_len),
          });
        countTokens(report, index.seq_len);
        report.samples += 1;
      }
      report.rawBytes += data.length;
    } catch (error) {
      if (error instanceof ShardProblem) report.problems.push(`${name}: ${error.message}`);
      else throw error;
    }
  }
  if (report.samples !== index.sequences)
    report.problems.push(
      `${path.join(dir, MEMMAP_INDEX)}: sequences is ${index.sequences}, the parts hold ${report.samples}`,
    );
  report.storedBytes = report.rawBytes;
  if (decodeIds.length > 0) {
    const encoder = await loadEncoder(
      options.tokenizer ?? index.tokenizer ?? decodeTokenizer(dir, report.writer, options),
      undefined,
      options.hubTokenizer,
    );
    report.decoded = decodeIds.map(({ sample, ids }) => ({ sample, text: encoder.decode(ids) }));
  }
  return finished(report);
}

/** A part's spans file: gzipped lines of `start,end,id`, increasing, inside the part. */
function checkSpans(gzipped: Buffer | undefined, file: MemmapIndex['files'][number]): void {
  if (!gzipped) throw new ShardProblem(`its spans file ${file.spans} cannot be read`);
  let text: string;
  try {
    text = gunzipSync(gzipped).toString('utf8');
  } catch (error) {
    throw new ShardProblem(`its spans file ${file.spans} does not gunzip (${messageOf(error)})`);
  }
  let previous = 0;
  for (const [line, row] of text.split('\n').filter(Boolean).entries()) {
    const [start, end] = row.split(',', 2).map(Number);
    if (!isCount(start) || !isCount(end) || start! < previous || end! <= start! || end! > file.tokens)
      throw new ShardProblem(
        `${file.spans} line ${line + 1} is not an increasing span inside the part: ${row}`,
      );
    previous = end!;
  }
}

/** Adds one entry's token count to the report's totals. */
function countTokens(report: InspectReport, length: number): void {
  report.tokens += length;
  report.minTokens = Math.min(report.minTokens ?? length, length);
  report.maxTokens = Math.max(report.maxTokens ?? length, length);
}

/** Checks each PREFIX.idx against its PREFIX.bin as Megatron's loader reads them; decodes the first entries. */
async function inspectMegatron(
  dir: string,
  prefixes: string[],
  options: InspectOptions,
): Promise<InspectReport> {
  const report = await emptyReport(dir, 'megatron');
  report.shards = prefixes.length;
  const decodeIds: Array<{ sample: number; ids: ArrayLike<number> }> = [];
  for (const prefix of prefixes) {
    const names = megatronFiles(prefix);
    let bin: Awaited<ReturnType<typeof open>> | undefined;
    try {
      const idx = await readFile(path.join(dir, names.idx)).catch((error) => {
        throw new ShardProblem(
          `cannot be read (${messageOf(error)}): the pair is complete only once it is written`,
        );
      });
      let parsed: ReturnType<typeof parseMegatronIndex>;
      try {
        parsed = parseMegatronIndex(idx);
      } catch (error) {
        throw new ShardProblem(messageOf(error));
      }
      const { lengths, pointers, documentIndices, itemBytes } = parsed;
      if (parsed.dtype !== 'uint16' && parsed.dtype !== 'int32')
        throw new ShardProblem(`holds ${parsed.dtype} tokens, token ids are uint16 or int32`);
      const last = documentIndices.length - 1;
      if (documentIndices[0] !== 0n || documentIndices[last] !== BigInt(lengths.length))
        throw new ShardProblem(`document indices must run from 0 to ${lengths.length}`);
      let end = 0;
      for (let at = 0; at < lengths.length; at += 1) {
        if (pointers[at] !== BigInt(end))
          throw new ShardProblem(
            `entry ${at} starts at byte ${pointers[at]}, the entries before end at ${end}`,
          );
        end += lengths[at]! * itemBytes;
        countTokens(report, lengths[at]!);
        report.samples += 1;
      }
      bin = await open(path.join(dir, names.bin)).catch((error) => {
        throw new ShardProblem(`${names.bin} cannot be read (${messageOf(error)})`);
      });
      const binBytes = (await bin.stat()).size;
      if (binBytes !== end)
        throw new ShardProblem(`${names.bin} has ${binBytes} bytes, the index covers ${end}`);
      report.rawBytes += binBytes + idx.length;
      for (let at = 0; at < lengths.length && decodeIds.length < (options.decode ?? 0); at += 1) {
        const bytes = Buffer.alloc(lengths[at]! * itemBytes);
        await bin.read(bytes, 0, bytes.length, Number(pointers[at]));
        const ids =
          itemBytes === 2
            ? new Uint16Array(bytes.buffer, bytes.byteOffset, lengths[at]!)
            : new Int32Array(bytes.buffer, bytes.byteOffset, lengths[at]!);
        decodeIds.push({ sample: report.samples - lengths.length + at, ids });
      }
    } catch (error) {
      if (error instanceof ShardProblem)
        report.problems.push(`${path.join(dir, names.idx)}: ${error.message}`);
      else throw error;
    } finally {
      await bin?.close();
    }
  }
  report.storedBytes = report.rawBytes;
  if (decodeIds.length > 0) {
    const encoder = await loadEncoder(
      decodeTokenizer(dir, report.writer, options),
      undefined,
      options.hubTokenizer,
    );
    report.decoded = decodeIds.map(({ sample, ids }) => ({ sample, text: encoder.decode(ids) }));
  }
  return finished(report);
}

/** Reads a stored file and checks its size and hashes against the index. */
async function readChecked(
  dir: string,
  info: { basename: string; bytes: number },
  hashes: Record<string, string>,
): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path.join(dir, info.basename));
  } catch (error) {
    throw new ShardProblem(`cannot be read (${messageOf(error)})`);
  }
  if (data.length !== info.bytes)
    throw new ShardProblem(`has ${data.length} bytes, index.json says ${info.bytes}`);
  checkHashes(data, hashes, '');
  return data;
}

/** `label` says which bytes are meant when they are not the stored file itself. */
function checkHashes(data: Buffer, expected: Record<string, string>, label: string): void {
  const supported = supportedHashes();
  const known = Object.keys(expected).filter((algorithm) => supported.includes(algorithm));
  const actual = digests(data, known);
  for (const algorithm of known) {
    if (actual[algorithm] !== expected[algorithm]) {
      throw new ShardProblem(
        `${label}${algorithm} is ${actual[algorithm]}, index.json says ${expected[algorithm]}`,
      );
    }
  }
}

/** Decompresses a stored zstd file that must be ONE frame declaring `rawBytes` (what python's zstd requires). */
function decompressShard(stored: Buffer, rawBytes: number): Buffer {
  let frames: number[];
  try {
    frames = zstdFrameLengths(stored);
  } catch (error) {
    throw new ShardProblem(`is not valid zstd (${messageOf(error)})`);
  }
  if (frames.length !== 1)
    throw new ShardProblem(`holds ${frames.length} zstd frames, readers need exactly one`);
  const declared = parseZstdFrameHeader(stored).contentSize;
  if (declared === undefined)
    throw new ShardProblem(`its zstd frame declares no content size (python's zstd rejects it)`);
  if (declared !== rawBytes)
    throw new ShardProblem(`its zstd frame declares ${declared} bytes, index.json says ${rawBytes}`);
  try {
    return zstdDecompress(stored);
  } catch (error) {
    throw new ShardProblem(`does not decompress (${messageOf(error)})`);
  }
}

function checkMdsEntry(entry: unknown): string | undefined {
  if (!sameKeys(entry, SHARD_ENTRY_KEYS)) {
    const keys = entry && typeof entry === 'object' ? Object.keys(entry).sort().join(', ') : String(entry);
    return `shard entry keys are [${keys}], MDS readers need exactly [${SHARD_ENTRY_KEYS.join(', ')}]`;
  }
  const shard = entry as MdsShardEntry;
  if (shard.format !== 'mds' || shard.version !== 2) return 'format must be "mds" and version 2';
  if (!isStrings(shard.column_names) || !isStrings(shard.column_encodings))
    return 'column_names and column_encodings must be lists of strings';
  if (
    shard.column_names.length !== shard.column_encodings.length ||
    shard.column_names.length !== shard.column_sizes?.length
  ) {
    return 'column_names, column_encodings and column_sizes differ in length';
  }
  if (!isStrings(shard.hashes) || [...shard.hashes].sort().join() !== shard.hashes.join())
    return 'hashes must be a sorted list of names';
  if (!isCount(shard.samples)) return 'samples must be a whole number';
  if (shard.size_limit !== null && !isCount(shard.size_limit))
    return 'size_limit must be a whole number or null';
  for (const [key, info] of [
    ['raw_data', shard.raw_data],
    ['zip_data', shard.zip_data],
  ] as const) {
    if (key === 'zip_data' && info === null) continue;
    if (
      !sameKeys(info, ['basename', 'bytes', 'hashes']) ||
      typeof info?.basename !== 'string' ||
      !isCount(info.bytes)
    ) {
      return `${key} must be {basename, bytes, hashes}`;
    }
    if (
      Object.keys(info.hashes ?? {})
        .sort()
        .join() !== shard.hashes.join()
    )
      return `${key}.hashes must have one digest per name in hashes`;
  }
  if ((shard.zip_data === null) !== (shard.compression === null))
    return 'zip_data must be null exactly when compression is null';
  if (shard.compression !== null && !/^zstd(:\d+)?$/.test(String(shard.compression))) {
    return `compression ${JSON.stringify(shard.compression)} cannot be checked here (zstd only)`;
  }
  return undefined;
}

async function inspectMds(
  dir: string,
  index: unknown,
  report: InspectReport,
  problem: Problem,
  options: InspectOptions,
) {
  if (!sameKeys(index, ['shards', 'version']) || (index as { version: unknown }).version !== 2) {
    problem('index.json', 'an MDS index has exactly the keys "shards" and "version" (2)');
    if (!Array.isArray((index as { shards?: unknown })?.shards)) return;
  }
  const entries = (index as { shards: unknown[] }).shards;
  report.shards = entries.length;
  const decodeIds: Array<{ sample: number; ids: ArrayLike<number> }> = [];
  for (const [position, entry] of entries.entries()) {
    const invalid = checkMdsEntry(entry);
    if (invalid) {
      problem(`index.json shard ${position}`, invalid);
      continue;
    }
    const shard = entry as MdsShardEntry;
    const name = (shard.zip_data ?? shard.raw_data).basename;
    if (position === 0) {
      report.columns = shard.column_names;
      report.compression = shard.compression;
    }
    try {
      const stored = await readChecked(
        dir,
        shard.zip_data ?? shard.raw_data,
        (shard.zip_data ?? shard.raw_data).hashes,
      );
      const raw = shard.zip_data ? decompressShard(stored, shard.raw_data.bytes) : stored;
      if (shard.zip_data) {
        if (raw.length !== shard.raw_data.bytes)
          throw new ShardProblem(
            `decompresses to ${raw.length} bytes, raw_data says ${shard.raw_data.bytes}`,
          );
        checkHashes(raw, shard.raw_data.hashes, `decompressed (${shard.raw_data.basename}) `);
      }
      report.rawBytes += raw.length;
      report.storedBytes += stored.length;
      inspectMdsSamples(raw, shard, name, report, (sample, ids) => {
        if (decodeIds.length < (options.decode ?? 0)) decodeIds.push({ sample, ids });
      });
    } catch (error) {
      if (error instanceof ShardProblem) problem(name, error.message);
      else if (error instanceof MegadocsError) report.problems.push(error.message);
      else throw error;
    }
  }
  if (decodeIds.length > 0) {
    const encoder = await loadEncoder(
      decodeTokenizer(dir, report.writer, options),
      undefined,
      options.hubTokenizer,
    );
    report.decoded = decodeIds.map(({ sample, ids }) => ({ sample, text: encoder.decode(ids) }));
  }
}

/** Checks one raw shard sample by sample and adds its counts to the report; hands each tokens array to onTokens. */
function inspectMdsSamples(
  raw: Buffer,
  shard: MdsShardEntry,
  name: string,
  report: InspectReport,
  onTokens: (sample: number, ids: ArrayLike<number>) => void,
): void {
  const { count, offsets } = readShardLayout(raw, name);
  if (count !== shard.samples)
    throw new ShardProblem(`holds ${count} samples, index.json says ${shard.samples}`);
  const sizes = shard.column_encodings.map((encoding, at) =>
    encodingSize(parseEncoding(encoding, `${name}: column ${shard.column_names[at]}`)),
  );
  if (sizes.join() !== shard.column_sizes.join())
    throw new ShardProblem(`column_sizes ${JSON.stringify(shard.column_sizes)} do not match the encodings`);
  const configEnd = offsets[0]!;
  try {
    JSON.parse(raw.subarray(4 + 4 * (count + 1), configEnd).toString('utf8'));
  } catch {
    throw new ShardProblem('the config JSON between the offsets and the first sample does not parse');
  }
  const { names, encodings } = columnDecoders(shard);
  const tokensAt = names.indexOf('tokens');
  for (let at = 0; at < count; at += 1) {
    const where = `${name}: sample ${at}`;
    const columns = splitSample(raw.subarray(offsets[at]!, offsets[at + 1]!), sizes, where);
    for (const [position, column] of columns.entries()) {
      const value = decodeColumn(column, encodings[position]!, `${where}, column ${names[position]}`);
      if (position === tokensAt) {
        countTokens(report, (value as ArrayLike<number>).length);
        onTokens(report.samples, value as ArrayLike<number>);
      }
    }
    report.samples += 1;
  }
}

/** The datasets of a `--streams separate` run in `dir` (from its mixture.json), or undefined when it is none. */
async function separateStreams(dir: string): Promise<string[] | undefined> {
  const mixture = await readJson(path.join(dir, MIXTURE_FILE));
  const streams = (mixture as { streams?: Record<string, { local?: unknown }> } | undefined)?.streams;
  if (!streams || typeof streams !== 'object') return undefined;
  return Object.values(streams)
    .map((stream) => stream?.local)
    .filter((local): local is string => typeof local === 'string')
    .map((local) => path.join(dir, local));
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The run that wrote the dataset in `dir`: its megadocs.json, or that of a separate-streams run above it. */
async function datasetWriter(dir: string): Promise<DatasetWriter | null> {
  const parent = path.dirname(path.resolve(dir));
  const streamsAbove = (await separateStreams(parent)) ?? [];
  const runDirs = [dir, ...(streamsAbove.includes(path.resolve(dir)) ? [parent] : [])];
  for (const runDir of runDirs) {
    const manifest = (await readJson(path.join(runDir, 'megadocs.json'))) as
      | { command?: unknown; options?: { tokenizer?: unknown } }
      | undefined;
    if (!manifest || typeof manifest !== 'object') continue;
    const { command, options } = manifest;
    return {
      command: typeof command === 'string' ? command : undefined,
      runDir,
      tokenizer: typeof options?.tokenizer === 'string' ? options.tokenizer : undefined,
    };
  }
  return null;
}

/** The tokenizer to decode with: the option, else the one the writing run recorded in its megadocs.json. */
function decodeTokenizer(dir: string, writer: DatasetWriter | null, options: InspectOptions): string {
  const spec = options.tokenizer ?? writer?.tokenizer;
  if (spec) return spec;
  throw new MegadocsError('BAD_OPTION', 'no tokenizer to decode with', {
    where: path.join(writer?.runDir ?? dir, 'megadocs.json'),
    hint: 'Pass --tokenizer (e.g. o200k_base): the dataset has no megadocs.json naming the tokenizer it was packed with',
  });
}

async function inspectJsonl(
  dir: string,
  index: unknown,
  report: InspectReport,
  problem: Problem,
  options: InspectOptions,
) {
  if (!sameKeys(index, ['format', 'shards', 'version']) || (index as { version: unknown }).version !== 1) {
    problem('index.json', 'a jsonl index has exactly the keys "format", "shards" and "version" (1)');
    if (!Array.isArray((index as { shards?: unknown })?.shards)) return;
  }
  const entries = (index as { shards: unknown[] }).shards;
  report.shards = entries.length;
  report.columns = [];
  for (const [position, entry] of entries.entries()) {
    const shard = entry as JsonlShardEntry;
    if (
      !sameKeys(entry, ['basename', 'bytes', 'raw_bytes', 'records', 'sha1']) ||
      typeof shard.basename !== 'string'
    ) {
      problem(
        `index.json shard ${position}`,
        'a jsonl shard entry has exactly basename, bytes, raw_bytes, records, sha1',
      );
      continue;
    }
    const name = shard.basename;
    const compressed = name.endsWith('.zst');
    if (position === 0) report.compression = compressed ? 'zstd' : null;
    try {
      const stored = await readChecked(dir, shard, { sha1: shard.sha1 });
      const raw = compressed ? decompressShard(stored, shard.raw_bytes) : stored;
      if (raw.length !== shard.raw_bytes)
        throw new ShardProblem(`holds ${raw.length} raw bytes, index.json says ${shard.raw_bytes}`);
      const text = raw.toString('utf8');
      if (text.length > 0 && !text.endsWith('\n'))
        throw new ShardProblem('the last line has no newline (truncated?)');
      const lines = text.length > 0 ? text.slice(0, -1).split('\n') : [];
      if (lines.length !== shard.records)
        throw new ShardProblem(`holds ${lines.length} lines, index.json says ${shard.records}`);
      for (const [line, json] of lines.entries()) {
        let record: unknown;
        try {
          record = JSON.parse(json);
        } catch (error) {
          throw new ShardProblem(`line ${line + 1} is not JSON (${messageOf(error)})`);
        }
        if (report.decoded.length < (options.decode ?? 0)) {
          const value = (record as { text?: unknown })?.text;
          report.decoded.push({ sample: report.samples, text: typeof value === 'string' ? value : json });
        }
        report.samples += 1;
      }
      report.rawBytes += raw.length;
      report.storedBytes += stored.length;
    } catch (error) {
      if (error instanceof ShardProblem) problem(name, error.message);
      else if (error instanceof MegadocsError) report.problems.push(error.message);
      else throw error;
    }
  }
}
