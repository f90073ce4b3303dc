// JSON Lines: splits byte chunks on newline bytes and parses each line with JSON.parse.
// No per-character work in JS; handles lines, CRLF and UTF-8 sequences split across chunks.
import { MegadocsError, messageOf } from '../../errors.js';
import type { RejectRecord, SourceRecord } from '../types.js';

const NEWLINE = 0x0a;

/**
 * The records of a JSONL byte stream, one batch per input chunk. Blank lines are ignored; a line that
 * is not valid JSON goes to `reject` with `name:line`. Only the current partial line is buffered.
 */
export async function* jsonlRecords(
  name: string,
  chunks: AsyncIterable<Buffer>,
  reject: RejectRecord,
): AsyncGenerator<SourceRecord[]> {
  const parser = new LineParser(name, reject);
  let partial: Buffer[] = [];
  for await (const chunk of chunks) {
    const batch: SourceRecord[] = [];
    let start = 0;
    if (partial.length > 0) {
      const end = chunk.indexOf(NEWLINE);
      if (end < 0) {
        partial.push(chunk);
        continue;
      }
      partial.push(chunk.subarray(0, end));
      parser.parseLine(Buffer.concat(partial), 0, undefined, batch);
      partial = [];
      start = end + 1;
    }
    for (let end = chunk.indexOf(NEWLINE, start); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      parser.parseLine(chunk, start, end, batch);
      start = end + 1;
    }
    if (start < chunk.length) partial.push(chunk.subarray(start));
    if (batch.length > 0) yield batch;
  }
  if (partial.length > 0) {
    const batch: SourceRecord[] = [];
    parser.parseLine(Buffer.concat(partial), 0, undefined, batch);
    if (batch.length > 0) yield batch;
  }
}

/** Parses one line at a time; keeps the line and record counters across chunks. */
class LineParser {
  private line = 0;
  private row = 0;

  constructor(
    private readonly name: string,
    private readonly reject: RejectRecord,
  ) {}

  /** Parses `bytes[start, end)` (one line without its newline) into `batch`. */
  parseLine(bytes: Buffer, start: number, end: number | undefined, batch: SourceRecord[]): void {
    this.line += 1;
    const stop = end ?? bytes.length;
    if (stop === start) return;
    const from = this.line === 1 && hasByteOrderMark(bytes, start, stop) ? start + 3 : start;
    const text = bytes.toString('utf8', from, stop);
    let value: unknown;
    try {
      value = JSON.parse(text); // JSON whitespace includes \r, so CRLF lines parse as they are.
    } catch (error) {
      if (text.trim().length === 0) return;
      this.row += 1;
      this.reject(
        new MegadocsError('BAD_INPUT', `malformed JSON (${messageOf(error)})`, {
          where: `${this.name}:${this.line}`,
          hint: 'Fix or remove this line, or pass --on-error skip to skip malformed records',
          cause: error,
        }),
      );
      return;
    }
    batch.push({ value, row: this.row, line: this.line });
    this.row += 1;
  }
}

function hasByteOrderMark(bytes: Buffer, start: number, stop: number): boolean {
  return stop - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf;
}
