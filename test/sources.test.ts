// Sources end to end on the real data in ../shared/data: inputs expansion, readDocs across formats,
// ids and FILE:ROW, errors through the stream, stats, and laziness (one shard open, only when pulled).
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandInputs } from '../lib/sources/inputs.js';
import { emptySourceStats, iterateDocs, type ReadOptions, readDocs } from '../lib/sources/read.js';
import type { ShardRef } from '../lib/sources/types.js';
import type { Doc } from '../lib/types.js';
import { DATA, failure, useSourceFixtures } from './helpers/sources.js';

const FIXTURES = useSourceFixtures();
const data = (name: string) => path.join(DATA, name);
const fixture = (name: string) => path.join(FIXTURES, name);

async function docsOf(inputs: string[], options: ReadOptions = {}): Promise<Doc[]> {
  return readDocs(await expandInputs(inputs), options)
    .collect()
    .toPromise(Promise);
}

function textDigest(docs: Doc[]): string {
  const hash = createHash('sha256');
  for (const doc of docs) hash.update(doc.text).update('\0');
  return hash.digest('hex');
}

/** The records of a JSONL file parsed the plain way, as the reference. */
function jsonlReference(file: string): { id: unknown; text: string }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe('readDocs on the real data', () => {
  it('reads fineweb-300 as JSONL and as Parquet: the same 300 documents in the same order', async () => {
    const fromJsonl = await docsOf([data('fineweb-300.jsonl')]);
    const fromParquet = await docsOf([data('fineweb-300.parquet')]);
    const reference = jsonlReference(data('fineweb-300.jsonl'));
    expect(fromJsonl).toHaveLength(300);
    expect(fromJsonl.map((d) => d.id)).toEqual(reference.map((r) => String(r.id)));
    expect(fromParquet.map((d) => d.id)).toEqual(fromJsonl.map((d) => d.id));
    expect(textDigest(fromParquet)).toBe(textDigest(fromJsonl));
    expect(textDigest(fromJsonl)).toBe(textDigest(reference as Doc[]));
    expect(fromParquet[299].meta).toEqual({ source: data('fineweb-300.parquet'), row: 299 });
  });

  it('reads wikipedia-2349 as .jsonl and .jsonl.zst: the same 2,349 documents', async () => {
    const plain = await docsOf([data('wikipedia-2349.jsonl')]);
    const zst = await docsOf([data('wikipedia-2349.jsonl.zst')]);
    expect(plain).toHaveLength(2349);
    expect(zst.map((d) => d.id)).toEqual(plain.map((d) => d.id));
    expect(textDigest(zst)).toBe(textDigest(plain));
    expect(plain.map((d) => d.id)).toEqual(
      jsonlReference(data('wikipedia-2349.jsonl')).map((r) => String(r.id)),
    );
  });

  it('reads cc-warc-100.zstd.parquet with --text-field contents --id-field document_id', async () => {
    const docs = await docsOf([data('cc-warc-100.zstd.parquet')], {
      textField: 'contents',
      idField: 'document_id',
    });
    expect(docs).toHaveLength(100);
    expect(new Set(docs.map((d) => d.id)).size).toBe(100);
    expect(docs.every((d) => /^[0-9a-f]{64}$/.test(d.id) && d.text.length > 0)).toBe(true);
  });

  it('turns INT64 (bigint) ids into decimal strings', async () => {
    const docs = await docsOf([data('cc-warc-100.zstd.parquet')], {
      textField: 'contents',
      idField: 'int_id_column',
    });
    expect(docs).toHaveLength(100);
    expect(docs.every((d) => /^-?\d+$/.test(d.id))).toBe(true);
  });

  it('gives FILE:ROW ids (by the base name of a file given directly) to the Hub parquet copy, which has no id column', async () => {
    const file = data('hub-convert-parquet/default/train/0000.parquet');
    const docs = await docsOf([file], { textField: 'prompt' });
    expect(docs).toHaveLength(203);
    expect(docs.map((d) => d.id)).toEqual(docs.map((_d, row) => `0000.parquet:${row}`));
    expect(docs[5].meta).toEqual({ source: file, row: 5 });
  });

  it('reads a .txt file as one document', async () => {
    const docs = await docsOf([data('war-and-peace.txt')]);
    expect(docs).toHaveLength(1);
    expect(docs[0].id).toBe('war-and-peace.txt:0');
    expect(docs[0].text).toBe(readFileSync(data('war-and-peace.txt'), 'utf8').replace(/^\ufeff/, ''));
  });

  it('counts files, documents, raw bytes and skipped records', async () => {
    const stats = emptySourceStats();
    await docsOf([data('wikipedia-2349.jsonl.zst'), fixture('malformed-line.jsonl')], {
      onError: 'skip',
      stats,
    });
    const sizes = await Promise.all(
      [data('wikipedia-2349.jsonl.zst'), fixture('malformed-line.jsonl')].map((f) => fs.stat(f)),
    );
    expect(stats).toEqual({
      files: 2,
      documents: 2349 + 3,
      bytes: sizes[0].size + sizes[1].size,
      skipped: 1,
    });
  });
});

describe('readDocs on the fixtures', () => {
  const expectedTexts = JSON.parse(readFileSync(fixture('mixed.json'), 'utf8')).map(
    (r: { text: string }) => r.text,
  );

  it('reads the same documents from .jsonl (CRLF, BOM), .jsonl.gz and .json', async () => {
    for (const name of ['mixed.jsonl', 'mixed.jsonl.gz', 'mixed.json']) {
      const file = fixture(name);
      const docs = await docsOf([file]);
      expect(docs.map((d) => d.text)).toEqual(expectedTexts);
      expect(docs.map((d) => d.id)).toEqual([
        'a-1',
        '7',
        '12345678901234567890',
        `${name}:3`,
        `${name}:4`,
        'a-6',
      ]);
    }
  });

  it('stops at a malformed line with file:line, or skips and counts it', async () => {
    const file = fixture('malformed-line.jsonl');
    const error = await failure(docsOf([file]));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toContain(`${file}:3: malformed JSON`);
    expect(error.hint).toContain('--on-error skip');
    const stats = emptySourceStats();
    const docs = await docsOf([file], { onError: 'skip', stats });
    expect(docs.map((d) => d.id)).toEqual(['m-1', 'm-2', 'm-4']);
    expect(docs.map((d) => d.meta?.row)).toEqual([0, 1, 3]);
    expect(stats.skipped).toBe(1);
  });

  it('names the missing text field and the fields that exist, with the --text-field hint', async () => {
    const file = fixture('no-text-field.jsonl');
    const missing = await failure(docsOf([file]));
    expect(missing.message).toContain(`${file}:2: the record has no field "text" (fields: id, body, lang)`);
    expect(missing.hint).toContain('--text-field');
    const otherField = await failure(docsOf([file], { textField: 'body' }));
    expect(otherField.message).toContain(`${file}:1: the record has no field "body" (fields: id, text)`);
    const stats = emptySourceStats();
    const docs = await docsOf([file], { onError: 'skip', stats });
    expect(docs.map((d) => d.id)).toEqual(['n-1']);
    expect(stats.skipped).toBe(2);
  });

  it('says when the text field holds something other than a string', async () => {
    const file = fixture('no-text-field.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-sources-'));
    try {
      const numberText = path.join(dir, 'number-text.jsonl');
      await fs.writeFile(numberText, `${lines[0]}\n${lines[2]}\n`);
      const error = await failure(docsOf([numberText]));
      expect(error.message).toContain(
        `${numberText}:2: the record has a number in field "text" (fields: id, text)`,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('names the column list when a Parquet file lacks the text column', async () => {
    const file = data('hub-convert-parquet/default/train/0000.parquet');
    const error = await failure(docsOf([file]));
    expect(error.message).toContain(`${file}: there is no column "text" (columns: act, prompt)`);
  });
});

describe('expandInputs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-inputs-'));
    await fs.mkdir(path.join(dir, 'b', 'nested'), { recursive: true });
    await fs.mkdir(path.join(dir, 'only-notes'));
    for (const file of [
      'b/nested/z.jsonl',
      'b/a.json',
      'b/B.jsonl.gz',
      'b/notes.md',
      'b/.hidden.jsonl',
      'only-notes/x.csv',
    ]) {
      await fs.writeFile(path.join(dir, file), '');
    }
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('walks a directory recursively, sorted, keeping supported files and reporting the rest', async () => {
    const skipped: string[] = [];
    const shards = await expandInputs([path.join(dir, 'b')], { onSkipped: (file) => skipped.push(file) });
    const names = shards.map((s) => path.relative(dir, s.name));
    expect(names).toEqual(['b/B.jsonl.gz', 'b/a.json', 'b/nested/z.jsonl']);
    expect(skipped.map((file) => path.relative(dir, file))).toEqual(['b/notes.md']);
    expect(shards.every((s) => s.size === 0)).toBe(true);
  });

  it('walks the real data directory in the same order every time', async () => {
    const skipped: string[] = [];
    const first = (await expandInputs([DATA], { onSkipped: (file) => skipped.push(file) })).map(
      (s) => s.name,
    );
    const second = (await expandInputs([DATA])).map((s) => s.name);
    expect(second).toEqual(first);
    expect([...first].sort()).toEqual(first);
    expect(first.map((name) => path.relative(DATA, name))).toContain(
      'hub-convert-parquet/default/train/0000.parquet',
    );
    expect(first).toHaveLength(7);
    expect(skipped).toEqual([data('SOURCES.md')]);
  });

  it('expands globs sorted, and keeps the given order of inputs', async () => {
    const shards = await expandInputs([data('wikipedia-*'), data('*.parquet')]);
    expect(shards.map((s) => path.basename(s.name))).toEqual([
      'wikipedia-2349.jsonl',
      'wikipedia-2349.jsonl.zst',
      'cc-warc-100.zstd.parquet',
      'fineweb-300.parquet',
    ]);
    const relative = path.relative(process.cwd(), DATA);
    const fromRelative = await expandInputs([`${relative}/**/*.parquet`]);
    expect(fromRelative.map((s) => s.name)).toEqual([
      `${relative}/cc-warc-100.zstd.parquet`,
      `${relative}/fineweb-300.parquet`,
      `${relative}/hub-convert-parquet/default/train/0000.parquet`,
    ]);
  });

  it('names an input that matches nothing', async () => {
    const missing = path.join(dir, 'nope.jsonl');
    const error = await failure(expandInputs([data('fineweb-300.jsonl'), missing]));
    expect(error.message).toContain(`${missing}: no such file, directory or glob match`);
    const noMatch = await failure(expandInputs([path.join(dir, '*.parquet')]));
    expect(noMatch.message).toContain(`${path.join(dir, '*.parquet')}: no input files: it matches no file`);
    const onlyNotes = await failure(expandInputs([path.join(dir, 'only-notes')]));
    expect(onlyNotes.message).toContain('it holds only unsupported files');
    expect(onlyNotes.message).toContain('x.csv');
    expect(onlyNotes.hint).toContain('.jsonl');
    const unsupported = await failure(expandInputs([data('SOURCES.md')]));
    expect(unsupported.message).toContain(`${data('SOURCES.md')}: unsupported file type`);
  });
});

describe('laziness', () => {
  /** Wraps shards so that every open is counted. */
  function counting(shards: ShardRef[]) {
    const opens = shards.map(() => 0);
    const wrapped = shards.map(
      (shard, index): ShardRef => ({
        ...shard,
        openStream: () => {
          opens[index] += 1;
          return shard.openStream();
        },
        openBuffer: () => {
          opens[index] += 1;
          return shard.openBuffer();
        },
      }),
    );
    return { opens, wrapped };
  }

  it('opens only the first shard to give the first document, and nothing before it is pulled', async () => {
    const shards = await expandInputs([
      data('fineweb-300.parquet'),
      data('fineweb-300.jsonl'),
      data('wikipedia-2349.jsonl.zst'),
    ]);
    const { opens, wrapped } = counting(shards);
    const stream = readDocs(wrapped, {});
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(opens).toEqual([0, 0, 0]);
    const first = await new Promise<Doc>((resolve, reject) =>
      stream.pull((error, doc) => (error ? reject(error) : resolve(doc as Doc))),
    );
    expect(first.id).toBe('fineweb-0');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(opens).toEqual([1, 0, 0]);
    stream.destroy();
  });

  it('opens the next shard only when the previous one is used up', async () => {
    const shards = await expandInputs([
      data('fineweb-300.jsonl'),
      data('fineweb-300.parquet'),
      data('wikipedia-2349.jsonl'),
    ]);
    const { opens, wrapped } = counting(shards);
    const docs = await readDocs(wrapped, {}).take(301).collect().toPromise(Promise);
    expect(docs).toHaveLength(301);
    expect(docs[300].meta).toEqual({ source: shards[1].name, row: 0 });
    expect(opens).toEqual([1, 1, 0]);
  });

  it('closes the shard when iterateDocs is left early (plain and zstd)', async () => {
    for (const name of ['wikipedia-2349.jsonl', 'wikipedia-2349.jsonl.zst']) {
      const [shard] = await expandInputs([data(name)]);
      const opened: Readable[] = [];
      const watched: ShardRef = {
        ...shard,
        openStream: async () => {
          const stream = await shard.openStream();
          opened.push(stream);
          return stream;
        },
      };
      for await (const doc of iterateDocs(watched)) {
        expect(doc.id).toBe('8721554');
        expect(opened[0].destroyed).toBe(false);
        break;
      }
      expect(opened).toHaveLength(1);
      expect(opened[0].destroyed).toBe(true);
    }
  });

  it('iterateDocs reads one shard on its own', async () => {
    const [shard] = await expandInputs([data('fineweb-300.parquet')]);
    const ids: string[] = [];
    for await (const doc of iterateDocs(shard, { textField: 'text' })) ids.push(doc.id);
    expect(ids).toHaveLength(300);
    expect(ids[0]).toBe('fineweb-0');
  });
});
