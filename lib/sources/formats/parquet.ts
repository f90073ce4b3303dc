// Parquet: the footer first, then one row group at a time, reading only the text and id columns.
// hyparquet decodes (SNAPPY built in; ZSTD, GZIP, BROTLI, LZ4 from hyparquet-compressors).
import {
  type AsyncBuffer,
  type FileMetaData,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { MegadocsError, messageOf } from '../../errors.js';
import type { RecordOptions, SourceRecord } from '../types.js';
import { describeBytes } from './detect.js';

/** Bytes fetched from the end of the file for the footer: one read for most files, a second if larger. */
const FOOTER_FETCH = 1 << 16;

/**
 * The rows of a Parquet file as `{ [textField], [idField]? }` objects, one batch per row group. Reads
 * the footer, then each row group's text column (and id column, when the file has one) only.
 */
export async function* parquetRecords(
  name: string,
  file: AsyncBuffer,
  fields: Pick<RecordOptions, 'textField' | 'idField'>,
): AsyncGenerator<SourceRecord[]> {
  const metadata = await readFooter(name, file);
  const columns = columnsToRead(name, metadata, fields);
  let rowStart = 0;
  for (const [index, group] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(group.num_rows);
    if (rowEnd > rowStart) {
      const rows = await readRowGroup(name, index, { file, metadata, columns, rowStart, rowEnd });
      yield rows.map((value, offset) => ({ value, row: rowStart + offset }));
    }
    rowStart = rowEnd;
  }
}

/** The top-level column names of a Parquet file. */
export function parquetColumns(metadata: FileMetaData): string[] {
  return parquetSchema(metadata).children.map((child) => child.element.name);
}

async function readFooter(name: string, file: AsyncBuffer): Promise<FileMetaData> {
  try {
    return await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH });
  } catch (error) {
    if (error instanceof MegadocsError) throw error;
    const head =
      file.byteLength > 0
        ? new Uint8Array(await file.slice(0, Math.min(16, file.byteLength)))
        : new Uint8Array();
    const content = describeBytes(head);
    const problem =
      content === 'Parquet data'
        ? `Parquet file is truncated or corrupt: its footer cannot be read (${messageOf(error)})`
        : `not a Parquet file: it holds ${content}`;
    throw new MegadocsError(content === 'Parquet data' ? 'CORRUPT' : 'BAD_INPUT', problem, {
      where: name,
      hint:
        content === 'Parquet data'
          ? 'Re-download or re-create this file, or leave it out of the inputs'
          : 'Rename the file so its extension matches its content (.jsonl, .json, .gz, .zst)',
      cause: error,
    });
  }
}

function columnsToRead(
  name: string,
  metadata: FileMetaData,
  { textField, idField }: Pick<RecordOptions, 'textField' | 'idField'>,
): string[] {
  const available = parquetColumns(metadata);
  if (!available.includes(textField)) {
    throw new MegadocsError(
      'BAD_INPUT',
      `there is no column "${textField}" (columns: ${available.join(', ')})`,
      {
        where: name,
        hint: 'Pass --text-field with the column that holds the text',
      },
    );
  }
  return idField !== textField && available.includes(idField) ? [textField, idField] : [textField];
}

async function readRowGroup(
  name: string,
  index: number,
  range: { file: AsyncBuffer; metadata: FileMetaData; columns: string[]; rowStart: number; rowEnd: number },
): Promise<Record<string, unknown>[]> {
  try {
    return await parquetReadObjects({ ...range, compressors });
  } catch (error) {
    if (error instanceof MegadocsError) throw error;
    throw new MegadocsError('CORRUPT', `row group ${index} cannot be decoded (${messageOf(error)})`, {
      where: name,
      hint: 'Re-download or re-create this file, or leave it out of the inputs',
      cause: error,
    });
  }
}
