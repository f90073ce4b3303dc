// Parquet on the real files: only the footer and the text/id column chunks are read, one row group
// per batch and only when pulled; truncated, mislabelled and damaged files are named in the error.
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type AsyncBuffer, type FileMetaData, parquetMetadataAsync } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { parquetRecords } from '../lib/sources/formats/parquet.js';
import { localShard } from '../lib/sources/local.js';
import type { SourceRecord } from '../lib/sources/types.js';
import { DATA, failure, useSourceFixtures } from './helpers/sources.js';

const FIXTURES = useSourceFixtures();

describe('parquetRecords', () => {
  interface Slice {
    start: number;
    end: number;
  }
  /** An AsyncBuffer over a local file that records every range read. */
  async function recording(file: string): Promise<{ buffer: AsyncBuffer; slices: Slice[] }> {
    const inner = await localShard(file).openBuffer();
    const slices: Slice[] = [];
    const buffer: AsyncBuffer = {
      byteLength: inner.byteLength,
      slice(start, end) {
        slices.push({ start, end: end ?? inner.byteLength });
        return inner.slice(start, end);
      },
    };
    return { buffer, slices };
  }

  /** Byte ranges of the column chunks named `columns`, in every row group; adjacent ones merged. */
  function chunkRanges(metadata: FileMetaData, columns: string[]): Slice[] {
    const ranges = metadata.row_groups.flatMap((group) =>
      group.columns
        .filter((chunk) => columns.includes(chunk.meta_data!.path_in_schema[0]))
        .map((chunk) => {
          const meta = chunk.meta_data!;
          const start = Number(meta.dictionary_page_offset ?? meta.data_page_offset);
          return { start, end: start + Number(meta.total_compressed_size) };
        }),
    );
    ranges.sort((a, b) => a.start - b.start);
    const merged: Slice[] = [];
    for (const range of ranges) {
      const last = merged.at(-1);
      if (last && range.start <= last.end) last.end = Math.max(last.end, range.end);
      else merged.push({ ...range });
    }
    return merged;
  }

  it('reads the footer, then only the text and id column chunks (ZSTD, nested columns beside them)', async () => {
    const file = path.join(DATA, 'cc-warc-100.zstd.parquet');
    const { buffer, slices } = await recording(file);
    const records: SourceRecord[] = [];
    for await (const batch of parquetRecords(file, buffer, {
      textField: 'contents',
      idField: 'document_id',
    })) {
      records.push(...batch);
    }
    expect(records).toHaveLength(100);
    expect(Object.keys(records[0].value as object).sort()).toEqual(['contents', 'document_id']);

    const metadata = await parquetMetadataAsync(await localShard(file).openBuffer());
    const wanted = chunkRanges(metadata, ['contents', 'document_id']);
    const [footer, ...data] = slices;
    expect(footer.end).toBe(buffer.byteLength);
    expect(data.length).toBeGreaterThan(0);
    for (const slice of data) {
      expect(
        wanted.some((range) => slice.start >= range.start && slice.end <= range.end),
        JSON.stringify(slice),
      ).toBe(true);
    }
    const readBytes = data.reduce((sum, slice) => sum + slice.end - slice.start, 0);
    const wantedBytes = wanted.reduce((sum, range) => sum + range.end - range.start, 0);
    expect(readBytes).toBe(wantedBytes);
  });

  it('reads one row group per batch, only when the batch is pulled', async () => {
    const file = path.join(DATA, 'fineweb-300.parquet');
    const { buffer, slices } = await recording(file);
    const metadata = await parquetMetadataAsync(await localShard(file).openBuffer());
    const records = parquetRecords(file, buffer, { textField: 'text', idField: 'id' });
    const first = await records.next();
    expect(first.done).toBe(false);
    expect((first.value as SourceRecord[]).map((r) => r.row)).toEqual(
      Array.from({ length: 50 }, (_v, i) => i),
    );
    const group0 = chunkRanges({ ...metadata, row_groups: [metadata.row_groups[0]] }, ['text', 'id']);
    const afterFooter = slices.slice(1);
    expect(afterFooter.every((s) => group0.some((r) => s.start >= r.start && s.end <= r.end))).toBe(true);
    let batches = 1;
    for await (const batch of records) {
      batches += 1;
      expect(batch).toHaveLength(50);
    }
    expect(batches).toBe(metadata.row_groups.length);
    await records.return(undefined);
  });

  it('lists the columns that exist when the text column does not', async () => {
    const file = path.join(DATA, 'fineweb-300.parquet');
    const { buffer } = await recording(file);
    const error = await failure(parquetRecords(file, buffer, { textField: 'content', idField: 'id' }).next());
    expect(error.message).toContain(
      `${file}: there is no column "content" (columns: text, id, language, language_score, token_count)`,
    );
    expect(error.hint).toContain('--text-field');
  });

  it('names the file when it is truncated, not Parquet, or has a damaged row group', async () => {
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-parquet-'));
    try {
      const original = readFileSync(path.join(DATA, 'fineweb-300.parquet'));
      const truncated = path.join(dir, 'truncated.parquet');
      await fs.writeFile(truncated, original.subarray(0, original.length >> 1));
      const cut = await failure(readParquet(truncated));
      expect(cut.code).toBe('CORRUPT');
      expect(cut.message).toContain(
        `${truncated}: Parquet file is truncated or corrupt: its footer cannot be read`,
      );

      const jsonl = path.join(dir, 'lines.parquet');
      await fs.copyFile(path.join(FIXTURES, 'malformed-line.jsonl'), jsonl);
      expect((await failure(readParquet(jsonl))).message).toContain(
        `${jsonl}: not a Parquet file: it holds bytes starting "{\\"id\\":\\"m-1\\",\\"tex"`,
      );

      const metadata = await parquetMetadataAsync(
        await localShard(path.join(DATA, 'fineweb-300.parquet')).openBuffer(),
      );
      const [text2] = chunkRanges({ ...metadata, row_groups: [metadata.row_groups[2]] }, ['text']);
      const damaged = Buffer.from(original);
      damaged.fill(0xab, text2.start, text2.start + 64);
      const damagedFile = path.join(dir, 'damaged.parquet');
      await fs.writeFile(damagedFile, damaged);
      const bad = await failure(readParquet(damagedFile));
      expect(bad.code).toBe('CORRUPT');
      expect(bad.message).toMatch(/damaged\.parquet: row group 2 cannot be decoded \(.+\)/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  async function readParquet(file: string): Promise<number> {
    let rows = 0;
    const buffer = await localShard(file).openBuffer();
    for await (const batch of parquetRecords(file, buffer, { textField: 'text', idField: 'id' }))
      rows += batch.length;
    return rows;
  }
});
