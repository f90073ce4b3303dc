// Plain text: the whole file is one document (e.g. a book), decoded as UTF-8 across chunk boundaries.
// Memory is the size of that one document; use JSONL or Parquet for many documents.
import { StringDecoder } from 'node:string_decoder';
import type { SourceRecord } from '../types.js';

/** One record holding the whole file in `textField` (a leading byte order mark is dropped). */
export async function* textRecords(
  chunks: AsyncIterable<Buffer>,
  textField: string,
): AsyncGenerator<SourceRecord[]> {
  const decoder = new StringDecoder('utf8');
  const parts: string[] = [];
  for await (const chunk of chunks) parts.push(decoder.write(chunk));
  parts.push(decoder.end());
  const text = parts.join('');
  yield [{ value: { [textField]: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text }, row: 0, line: 1 }];
}
