// Parquet readahead for ranged reads over HTTP: when the reader asks for some columns of row group k, the same
// columns of the next row groups are fetched in the background, so round trips overlap with decoding.
import { type AsyncBuffer, type FileMetaData, parquetMetadata } from 'hyparquet';

type FetchRange = (start: number, end: number) => Promise<ArrayBuffer>;
type ColumnMeta = FileMetaData['row_groups'][number]['columns'][number]['meta_data'];

/** Row groups fetched ahead of the one being read (memory: this many row groups' worth of the read columns). */
export const READAHEAD_ROW_GROUPS = 2;

/**
 * An AsyncBuffer over `fetchRange` that learns the file's layout from the footer the reader fetches first,
 * and prefetches the following row groups' byte ranges for the columns just asked for. A prefetched range is
 * used only for a request of exactly that range; one the reader has moved past is dropped.
 */
export function parquetReadahead(byteLength: number, fetchRange: FetchRange): AsyncBuffer {
  let metadata: FileMetaData | undefined;
  const ahead = new Map<string, { start: number; bytes: Promise<ArrayBuffer> }>();

  const learnFooter = async (bytes: Promise<ArrayBuffer>) => {
    try {
      metadata = parquetMetadata(await bytes);
    } catch {
      // the footer is longer than this tail: the reader fetches a longer one, which is tried again
    }
  };

  const prefetch = (start: number, end: number) => {
    const covered = metadata && coveredChunks(metadata, start, end);
    if (!metadata || !covered) return;
    for (let group = covered.group + 1; group <= covered.group + READAHEAD_ROW_GROUPS; group += 1) {
      const range = chunksRange(metadata, group, covered.positions);
      if (!range || ahead.has(key(...range))) continue;
      const bytes = fetchRange(...range);
      bytes.catch(() => undefined);
      ahead.set(key(...range), { start: range[0], bytes });
    }
  };

  return {
    byteLength,
    slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      const ready = ahead.get(key(start, end))?.bytes;
      ahead.delete(key(start, end));
      for (const [name, entry] of ahead) if (entry.start < start) ahead.delete(name);
      const bytes = ready ?? fetchRange(start, end);
      if (end === byteLength && !metadata) return learnFooter(bytes).then(() => bytes);
      prefetch(start, end);
      return bytes;
    },
  };
}

/** The row group and column positions whose chunks lie wholly inside [start, end), if any. */
function coveredChunks(metadata: FileMetaData, start: number, end: number) {
  for (const [group, rowGroup] of metadata.row_groups.entries()) {
    const positions = rowGroup.columns
      .map((column, position) => ({ position, span: chunkSpan(column.meta_data) }))
      .filter(({ span }) => span && span[0] >= start && span[1] <= end)
      .map(({ position }) => position);
    if (positions.length) return { group, positions };
  }
  return undefined;
}

/** The byte range spanning the given columns' chunks in row group `group` (undefined past the last one). */
function chunksRange(
  metadata: FileMetaData,
  group: number,
  positions: number[],
): [number, number] | undefined {
  const spans = positions.map((position) =>
    chunkSpan(metadata.row_groups[group]?.columns[position]?.meta_data),
  );
  if (spans.length === 0 || spans.some((span) => !span)) return undefined;
  const known = spans as Array<[number, number]>;
  return [Math.min(...known.map((span) => span[0])), Math.max(...known.map((span) => span[1]))];
}

/** Where a column chunk's bytes are (from its dictionary page, when it has one, as hyparquet reads it). */
function chunkSpan(meta: ColumnMeta): [number, number] | undefined {
  if (!meta) return undefined;
  const first = Number(meta.dictionary_page_offset || meta.data_page_offset);
  return [first, first + Number(meta.total_compressed_size)];
}

function key(start: number, end: number): string {
  return `${start}-${end}`;
}
