// Format readers on their own: names and magic bytes, JSONL and JSON-array splitting at every chunk
// boundary, gzip/zstd decoding and corruption, magic bytes that contradict a name.
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MegadocsError } from '../lib/errors.js';
import { decodedChunks } from '../lib/sources/formats/decompress.js';
import { formatOf } from '../lib/sources/formats/detect.js';
import { jsonArrayRecords } from '../lib/sources/formats/json-array.js';
import { jsonlRecords } from '../lib/sources/formats/jsonl.js';
import { localShard } from '../lib/sources/local.js';
import type { SourceRecord } from '../lib/sources/types.js';
import { DATA, failure, useSourceFixtures } from './helpers/sources.js';

const FIXTURES = useSourceFixtures();

type Reader = (
  name: string,
  chunks: AsyncIterable<Buffer>,
  reject: (e: MegadocsError) => void,
) => AsyncGenerator<SourceRecord[]>;

async function* chunksOf(parts: Buffer[]): AsyncGenerator<Buffer> {
  yield* parts;
}

/** Runs a reader over `parts`; rejected records are collected instead of thrown. */
async function readAll(reader: Reader, parts: Buffer[], name = 'input') {
  const records: SourceRecord[] = [];
  const rejected: MegadocsError[] = [];
  for await (const batch of reader(name, chunksOf(parts), (error) => rejected.push(error)))
    records.push(...batch);
  return { records, rejected };
}

/** Every way to cut `bytes` into two chunks, plus one-byte chunks. */
function splittings(bytes: Buffer): Buffer[][] {
  const cuts = Array.from({ length: bytes.length + 1 }, (_v, at) => [
    bytes.subarray(0, at),
    bytes.subarray(at),
  ]);
  return [...cuts, Array.from(bytes, (_v, i) => bytes.subarray(i, i + 1))];
}

/** Chunks of pseudo-random sizes (1 byte .. 64 KiB) from a fixed seed. */
function randomChunks(bytes: Buffer, seed: number): Buffer[] {
  const parts: Buffer[] = [];
  let state = seed;
  for (let at = 0; at < bytes.length; ) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (state % 65536);
    parts.push(bytes.subarray(at, at + size));
    at += size;
  }
  return parts;
}

function digest(values: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(values)).digest('hex');
}

describe('formatOf', () => {
  it('lets the last extension decide and reads compression around JSON formats', () => {
    expect(formatOf('a/b.jsonl')).toEqual({ container: 'jsonl', compression: 'none' });
    expect(formatOf('B.NDJSON')).toEqual({ container: 'jsonl', compression: 'none' });
    expect(formatOf('x.json.gz')).toEqual({ container: 'json', compression: 'gzip' });
    expect(formatOf('x.jsonl.zst')).toEqual({ container: 'jsonl', compression: 'zstd' });
    expect(formatOf('x.txt.zstd')).toEqual({ container: 'txt', compression: 'zstd' });
    expect(formatOf('cc-warc-100.zstd.parquet')).toEqual({ container: 'parquet', compression: 'none' });
    expect(formatOf('hf://datasets/o/n/data/train-0.parquet')).toEqual({
      container: 'parquet',
      compression: 'none',
    });
  });

  it('knows nothing of other names', () => {
    for (const name of [
      'SOURCES.md',
      'x.csv',
      'x.gz',
      'x.tar.gz',
      'x.parquet.gz',
      'jsonl',
      'dir.jsonl/readme',
    ]) {
      expect(formatOf(name), name).toBeUndefined();
    }
  });
});

describe('jsonlRecords', () => {
  const mixed = readFileSync(path.join(FIXTURES, 'mixed.jsonl'));
  // Reference: the file as one string, split on line ends, blank lines dropped, BOM removed.
  const referenceLines = mixed
    .toString('utf8')
    .replace(/^\ufeff/, '')
    .split(/\r?\n/);
  const reference = referenceLines.flatMap((text, index) =>
    text.trim() ? [{ value: JSON.parse(text), line: index + 1 }] : [],
  );

  it('gives the same records for every cut of a file with CRLF, BOM, a blank line and multibyte text', async () => {
    expect(reference).toHaveLength(6);
    for (const parts of splittings(mixed)) {
      const { records, rejected } = await readAll(jsonlRecords, parts);
      expect(rejected).toEqual([]);
      expect(records.map(({ value, line }) => ({ value, line }))).toEqual(reference);
      expect(records.map((r) => r.row)).toEqual([0, 1, 2, 3, 4, 5]);
    }
  });

  it('reads 2,349 real Wikipedia records identically in random chunk sizes', async () => {
    const bytes = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl'));
    const expected = bytes
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    for (const seed of [1, 2, 3]) {
      const { records } = await readAll(jsonlRecords, randomChunks(bytes, seed));
      expect(records).toHaveLength(2349);
      expect(digest(records.map((r) => r.value))).toBe(digest(expected));
    }
  });

  it('reads a last line without a newline, and a line longer than many chunks', async () => {
    const long = JSON.stringify({ id: 'long', text: 'ü'.repeat(300_000) });
    const bytes = Buffer.from(`{"id":"first","text":"x"}\n${long}`);
    const { records } = await readAll(jsonlRecords, randomChunks(bytes, 7));
    expect(records.map((r) => (r.value as { id: string }).id)).toEqual(['first', 'long']);
    expect((records[1].value as { text: string }).text).toBe('ü'.repeat(300_000));
  });

  it('rejects a malformed line with file:line, the parse problem and the --on-error hint', async () => {
    const bytes = readFileSync(path.join(FIXTURES, 'malformed-line.jsonl'));
    const { records, rejected } = await readAll(jsonlRecords, [bytes], 'malformed-line.jsonl');
    expect(rejected).toHaveLength(1);
    expect(rejected[0].where).toBe('malformed-line.jsonl:3');
    expect(rejected[0].message).toMatch(/^malformed-line\.jsonl:3: malformed JSON \(.+\)/);
    expect(rejected[0].message).toContain('--on-error skip');
    expect(records.map((r) => [(r.value as { id: string }).id, r.row, r.line])).toEqual([
      ['m-1', 0, 1],
      ['m-2', 1, 2],
      ['m-4', 3, 4],
    ]);
  });
});

describe('jsonArrayRecords', () => {
  const mixed = readFileSync(path.join(FIXTURES, 'mixed.json'));

  it('gives the same objects for every cut (escaped quotes, backslashes, brackets inside strings)', async () => {
    const expected = JSON.parse(mixed.toString('utf8')) as unknown[];
    for (const parts of splittings(mixed)) {
      const { records, rejected } = await readAll(jsonArrayRecords, parts);
      expect(rejected).toEqual([]);
      expect(records.map((r) => r.value)).toEqual(expected);
      expect(records.map((r) => r.line)).toEqual([2, 3, 4, 5, 6, 7]);
    }
  });

  it('handles runs of backslashes before quotes at any chunk boundary', async () => {
    const texts = ['\\', '\\\\', '"', '\\"', '\\\\"', 'x\\\\\\"}]', '{[', ''];
    const bytes = Buffer.from(JSON.stringify(texts.map((text, id) => ({ id, text }))));
    const expected = JSON.parse(bytes.toString('utf8')) as unknown[];
    for (const parts of splittings(bytes)) {
      const { records } = await readAll(jsonArrayRecords, parts);
      expect(records.map((r) => r.value)).toEqual(expected);
    }
  });

  it('streams a real 2 MB array in random chunk sizes', async () => {
    const lines = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl'), 'utf8').split('\n').filter(Boolean);
    const bytes = Buffer.from(`[\n${lines.join(',\n')}\n]`);
    const { records } = await readAll(jsonArrayRecords, randomChunks(bytes, 11));
    expect(records).toHaveLength(2349);
    expect(digest(records.map((r) => r.value))).toBe(digest(lines.map((line) => JSON.parse(line))));
    expect(records[2348].line).toBe(2350);
  });

  it('rejects a malformed element with file:line, and reads the others', async () => {
    const bytes = readFileSync(path.join(FIXTURES, 'malformed-element.json'));
    const { records, rejected } = await readAll(jsonArrayRecords, [bytes], 'malformed-element.json');
    expect(rejected).toHaveLength(1);
    expect(rejected[0].message).toMatch(
      /^malformed-element\.json:4: malformed JSON in array element 1 \(.+\)/,
    );
    expect(rejected[0].message).toContain('--on-error skip');
    expect(records.map((r) => [(r.value as { id: string }).id, r.row])).toEqual([
      ['e-1', 0],
      ['e-3', 2],
    ]);
  });

  it('refuses a file that is not an array, an array of non-objects, and a truncated array', async () => {
    const notArray = readFileSync(path.join(FIXTURES, 'not-an-array.json'));
    const cases: [Buffer, RegExp][] = [
      [notArray, /^x\.json:1: not a JSON array: it starts with "\{\\"id\\"/],
      [Buffer.from('[\n{"text":"a"},\n"b"]'), /^x\.json:3: array element 1 is not an object/],
      [
        Buffer.from('[{"text":"a"},\n{"text":"b"'),
        /^x\.json:2: not a complete JSON array: the array is not closed/,
      ],
      [
        Buffer.from('[{"text":"a"}] {"text":"b"}'),
        /^x\.json:1: unexpected "\{\\"text\\":\\"b\\"\}" after the end of the array/,
      ],
    ];
    for (const [bytes, message] of cases) {
      const error = await failure(readAll(jsonArrayRecords, [bytes], 'x.json'));
      expect(error.message).toMatch(message);
      expect(error.hint).toContain('.jsonl');
    }
  });
});

describe('decodedChunks', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-formats-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function decode(file: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of decodedChunks(localShard(file), formatOf(file)!, () => {})) parts.push(chunk);
    return Buffer.concat(parts);
  }

  it('undoes zstd and gzip, and counts the raw bytes read', async () => {
    const plain = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl'));
    const zst = path.join(DATA, 'wikipedia-2349.jsonl.zst');
    let raw = 0;
    const parts: Buffer[] = [];
    for await (const chunk of decodedChunks(localShard(zst), formatOf(zst)!, (n) => (raw += n)))
      parts.push(chunk);
    expect(Buffer.compare(Buffer.concat(parts), plain)).toBe(0);
    expect(raw).toBe((await fs.stat(zst)).size);
    const gz = path.join(FIXTURES, 'mixed.jsonl.gz');
    const lines = (await decode(gz)).toString('utf8').split('\n').filter(Boolean);
    expect(lines.map((line) => JSON.parse(line).text)).toContain('日本語のテキスト 🚀 emoji');
  });

  it('names the file when gzip data is corrupt or zstd data is truncated', async () => {
    const corrupt = path.join(FIXTURES, 'corrupt.jsonl.gz');
    const gzError = await failure(decode(corrupt));
    expect(gzError.code).toBe('CORRUPT');
    expect(gzError.message).toMatch(/corrupt\.jsonl\.gz: gzip data is corrupt or truncated \(.+\)/);

    const zstBytes = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl.zst'));
    const truncated = path.join(dir, 'cut.jsonl.zst');
    await fs.writeFile(truncated, zstBytes.subarray(0, 200_000));
    const zstError = await failure(decode(truncated));
    expect(zstError.code).toBe('CORRUPT');
    expect(zstError.where).toBe(truncated);
    expect(zstError.message).toContain('zstd data is corrupt or truncated');

    const truncatedGz = path.join(dir, 'cut.jsonl.gz');
    await fs.writeFile(truncatedGz, readFileSync(path.join(FIXTURES, 'mixed.jsonl.gz')).subarray(0, 100));
    expect((await failure(decode(truncatedGz))).message).toMatch(
      /cut\.jsonl\.gz: gzip data is corrupt or truncated \(unexpected end of file\)/,
    );
  });

  it('refuses content whose magic bytes contradict the extension', async () => {
    const gzipAsPlain = await failure(decode(path.join(FIXTURES, 'gzip-named-plain.jsonl')));
    expect(gzipAsPlain.message).toMatch(
      /gzip-named-plain\.jsonl: its name says uncompressed JSONL, but it holds gzip data/,
    );
    const plainAsZst = await failure(decode(path.join(FIXTURES, 'plain-named-zst.jsonl.zst')));
    expect(plainAsZst.message).toMatch(
      /plain-named-zst\.jsonl\.zst: its name says zstd data, but it holds bytes starting "\{\\"id\\":\\"a-1\\",\\"tex"/,
    );
    const parquetAsJsonl = path.join(dir, 'parquet.jsonl');
    await fs.copyFile(path.join(DATA, 'hub-convert-parquet/default/train/0000.parquet'), parquetAsJsonl);
    expect((await failure(decode(parquetAsJsonl))).message).toContain('but it holds Parquet data');
    for (const error of [gzipAsPlain, plainAsZst]) expect(error.hint).toContain('Rename the file');
  });

  it('reports a missing file as an IO error naming it', async () => {
    const error = await failure(decode(path.join(dir, 'gone.jsonl')));
    expect(error.code).toBe('IO');
    expect(error.message).toContain('gone.jsonl: cannot read the file (ENOENT');
  });
});
