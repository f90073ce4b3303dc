// The documents `megadocs plan` looks at: all, or a seeded sample of N (Parquet: row counts from the footers and
// only the sampled rows' row groups read; other files read through into a seeded reservoir).
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { Reservoir } from './reservoir.js';
import { seededIntegers } from './shuffle.js';
import { requireFormat } from './sources/formats/detect.js';
import { iterateDocs } from './sources/read.js';
import { type RecordOptions, type ShardRef, stableNameOf } from './sources/types.js';
import type { Doc } from './types.js';

export interface PlanDocuments {
  /** The documents to plan on (all, or the sample), in input order. */
  docs: Doc[] | AsyncIterable<Doc>;
  /** Documents of the inputs: known up front for a sample, counted as `docs` is read otherwise. */
  total(): number;
  /** Whether `docs` is a sample (the figures are scaled by total / sampled). */
  sampled: boolean;
}

function drawPositions(population: number, count: number, draw: (bound: number) => number): number[] {
  const chosen = new Set<number>();
  const wanted = Math.min(count, population);
  if (wanted * 2 > population) {
    // Most of them: shuffle all positions and keep the first.
    const all = Array.from({ length: population }, (_, index) => index);
    for (let i = all.length - 1; i > 0; i -= 1) {
      const j = draw(i + 1);
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all.slice(0, wanted).sort((a, b) => a - b);
  }
  while (chosen.size < wanted) chosen.add(draw(population));
  return [...chosen].sort((a, b) => a - b);
}

interface ParquetShard {
  shard: ShardRef;
  file: AsyncBuffer;
  metadata: FileMetaData;
  rows: number;
}

/** Bytes fetched from the end of a Parquet file for its footer (a second read when it is larger). */
const FOOTER_FETCH = 1 << 16;

async function parquetFooter(shard: ShardRef): Promise<ParquetShard> {
  const file = await shard.openBuffer();
  // Loaded only for Parquet inputs: every run plans at its start, and most read JSONL.
  const { parquetMetadataAsync } = await import('hyparquet');
  const metadata = await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH });
  return { shard, file, metadata, rows: Number(metadata.num_rows) };
}

/** The sampled rows (absolute positions within the file, sorted) of one Parquet file, a row group at a time. */
async function parquetRows(
  { shard, file, metadata }: ParquetShard,
  positions: number[],
  textField: string,
): Promise<Doc[]> {
  const [{ parquetReadObjects }, { compressors }] = await Promise.all([
    import('hyparquet'),
    import('hyparquet-compressors'),
  ]);
  const docs: Doc[] = [];
  let groupStart = 0;
  let next = 0;
  for (const group of metadata.row_groups) {
    const groupEnd = groupStart + Number(group.num_rows);
    const inGroup: number[] = [];
    while (next < positions.length && positions[next]! < groupEnd) inGroup.push(positions[next++]!);
    if (inGroup.length > 0) {
      const rows = await parquetReadObjects({
        file,
        metadata,
        columns: [textField],
        rowStart: groupStart,
        rowEnd: groupEnd,
        compressors,
      });
      for (const row of inGroup) {
        const text = rows[row - groupStart]?.[textField];
        if (typeof text === 'string')
          docs.push({ id: `${stableNameOf(shard)}:${row}`, text, meta: { source: shard.name, row } });
      }
    }
    groupStart = groupEnd;
  }
  return docs;
}

/** Every document of `shards`, counted as it is read. */
function allDocuments(shards: ShardRef[], record: RecordOptions): PlanDocuments {
  let count = 0;
  async function* docs(): AsyncGenerator<Doc> {
    for (const shard of shards) {
      for await (const doc of iterateDocs(shard, record)) {
        count += 1;
        yield doc;
      }
    }
  }
  return { docs: docs(), total: () => count, sampled: false };
}

/**
 * A seeded sample of `size` documents spread over the inputs in proportion to their documents: Parquet files by
 * their footers' row counts, the others by a reservoir over the documents read.
 */
async function sampledDocuments(
  shards: ShardRef[],
  record: RecordOptions,
  size: number,
  seed: number,
): Promise<PlanDocuments> {
  const draw = seededIntegers(seed, 'plan-sample');
  const parquet: ParquetShard[] = [];
  const reservoir = new Reservoir<Doc>(size, seed, 'plan-sample');
  let others = 0;
  for (const shard of shards) {
    if (requireFormat(shard.name).container === 'parquet') {
      parquet.push(await parquetFooter(shard));
      continue;
    }
    for await (const doc of iterateDocs(shard, record)) {
      others += 1;
      reservoir.offer(doc);
    }
  }
  const parquetRowsTotal = parquet.reduce((sum, file) => sum + file.rows, 0);
  const total = parquetRowsTotal + others;
  if (total <= size) return { ...allDocuments(shards, record), sampled: false };
  const fromParquet = Math.round((size * parquetRowsTotal) / total);
  const sample = drawPositions(reservoir.items.length, size - fromParquet, draw).map(
    (position) => reservoir.items[position]!,
  );
  let offset = 0;
  const positions = drawPositions(parquetRowsTotal, fromParquet, draw);
  for (const file of parquet) {
    const inFile = positions.filter((position) => position >= offset && position < offset + file.rows);
    sample.push(
      ...(await parquetRows(
        file,
        inFile.map((position) => position - offset),
        record.textField,
      )),
    );
    offset += file.rows;
  }
  return { docs: sample, total: () => total, sampled: true };
}

/** The documents to plan on: all of them, or a seeded sample of `sample` when the inputs hold more. */
export async function planDocuments(
  shards: ShardRef[],
  record: RecordOptions,
  sample?: { size: number; seed: number },
): Promise<PlanDocuments> {
  return sample ? sampledDocuments(shards, record, sample.size, sample.seed) : allDocuments(shards, record);
}
