// JSON Lines: splits byte chunks on newline bytes and parses each line with JSON.parse.
// One string decode per chunk (never per character); handles lines, CRLF and UTF-8 split across chunks.
import { MegadocsError, messageOf } from '../../errors.js';
import type { RejectRecord, SourceRecord } from '../types.js';

const NEWLINE = 0x0a;
const BYTE_ORDER_MARK = 0xfeff;

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
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    if (lastNewline < 0) {
      partial.push(chunk);
      continue;
    }
    partial.push(chunk.subarray(0, lastNewline));
    const complete = partial.length === 1 ? partial[0] : Buffer.concat(partial);
    partial = lastNewline + 1 < chunk.length ? [chunk.subarray(lastNewline + 1)] : [];
    const batch = parser.parseLines(complete.toString('utf8'));
    if (batch.length > 0) yield batch;
  }
  if (partial.length > 0) {
    const batch = parser.parseLines(Buffer.concat(partial).toString('utf8'));
    if (batch.length > 0) yield batch;
  }
}

/** Parses newline-separated text; keeps the line and record counters across calls. */
class LineParser {
  private line = 0;
  private row = 0;

  constructor(
    private readonly name: string,
    private readonly reject: RejectRecord,
  ) {}

  /** `text` holds whole lines separated by `\n` (no trailing newline). */
  parseLines(text: string): SourceRecord[] {
    const batch: SourceRecord[] = [];
    let start = 0;
    while (start <= text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      this.parseLine(end > start ? text.slice(start, end) : '', batch);
      start = end + 1;
    }
    return batch;
  }

  private parseLine(text: string, batch: SourceRecord[]): void {
    this.line += 1;
    if (text.length === 0) return;
    if (this.line === 1 && text.charCodeAt(0) === BYTE_ORDER_MARK) text = text.slice(1);
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
