// Parquet readahead for ranged reads over HTTP: when the reader asks for some columns of row group k, the same
// columns of row group k+1 are fetched in the background, so each round trip overlaps with decoding.
import { type AsyncBuffer, type FileMetaData, parquetMetadata } from 'hyparquet';

type FetchRange = (start: number, end: number) => Promise<ArrayBuffer>;

/** Ranges fetched ahead and not yet asked for, at most (memory stays at a few row groups' columns). */
const MAX_AHEAD = 2;

/**
 * An AsyncBuffer over `fetchRange` that learns the file's layout from the footer the reader fetches first,
 * and prefetches the next row group's byte range for the columns just asked for. A prediction that does not
 * match the next request exactly is dropped; reads are never wrong, at worst one range is fetched in vain.
 */
export function parquetReadahead(byteLength: number, fetchRange: FetchRange): AsyncBuffer {
  let metadata: FileMetaData | undefined;
  const ahead = new Map<string, Promise<ArrayBuffer>>();

  const learnFooter = async (bytes: Promise<ArrayBuffer>) => {
    try {
      metadata = parquetMetadata(await bytes);
    } catch {
      // the footer is longer than this tail: the reader fetches a longer one, which is tried again
    }
  };

  const prefetch = (start: number, end: number) => {
    if (!metadata || ahead.size >= MAX_AHEAD) return;
    const next = nextRowGroupRange(metadata, start, end);
    if (!next || ahead.has(key(...next))) return;
    const promise = fetchRange(...next);
    promise.catch(() => undefined);
    ahead.set(key(...next), promise);
  };

  return {
    byteLength,
    slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      const ready = ahead.get(key(start, end));
      ahead.delete(key(start, end));
      const bytes = ready ?? fetchRange(start, end);
      if (end === byteLength && !metadata) return learnFooter(bytes).then(() => bytes);
      prefetch(start, end);
      return bytes;
    },
  };
}

/** The byte range of the same columns in the following row group, when [start, end) covers whole column chunks of one. */
function nextRowGroupRange(metadata: FileMetaData, start: number, end: number): [number, number] | undefined {
  const groups = metadata.row_groups;
  for (let index = 0; index + 1 < groups.length; index += 1) {
    const covered = groups[index].columns
      .map((column, position) => ({ position, span: chunkSpan(column.meta_data) }))
      .filter(({ span }) => span && span[0] >= start && span[1] <= end);
    if (covered.length === 0) continue;
    const spans = covered.map(({ position }) => chunkSpan(groups[index + 1].columns[position]?.meta_data));
    if (spans.some((span) => !span)) return undefined;
    const next = spans as Array<[number, number]>;
    return [Math.min(...next.map((span) => span[0])), Math.max(...next.map((span) => span[1]))];
  }
  return undefined;
}

function chunkSpan(
  meta: FileMetaData['row_groups'][number]['columns'][number]['meta_data'],
): [number, number] | undefined {
  if (!meta) return undefined;
  const first = Number(meta.dictionary_page_offset || meta.data_page_offset);
  return [first, first + Number(meta.total_compressed_size)];
}

function key(start: number, end: number): string {
  return `${start}-${end}`;
}
