// A JSON file holding one top-level array of objects, read element by element without loading the file.
// A byte scanner finds where each element starts and ends (strings and escapes included); JSON.parse does the rest.
import { MegadocsError, messageOf } from '../../errors.js';
import type { RejectRecord, SourceRecord } from '../types.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const NEWLINE = 0x0a;

/**
 * The objects of a top-level JSON array, one batch per input chunk. Only the element being read is
 * buffered. An element that is not valid JSON (or not an object) goes to `reject` with `name:line`.
 */
export async function* jsonArrayRecords(
  name: string,
  chunks: AsyncIterable<Buffer>,
  reject: RejectRecord,
): AsyncGenerator<SourceRecord[]> {
  const scanner = new ArrayScanner(name, reject);
  for await (const chunk of chunks) {
    const batch = scanner.scan(chunk);
    if (batch.length > 0) yield batch;
  }
  scanner.finish();
}

type Phase = 'before-array' | 'in-array' | 'after-array';

/** Scanner state that lives across chunks: nesting depth, string/escape state, the partial element. */
class ArrayScanner {
  private phase: Phase = 'before-array';
  private started = false;
  /** Nesting depth inside the current element (0 between elements). */
  private depth = 0;
  private inString = false;
  /** The previous chunk ended inside a string on an unpaired backslash: the next byte is escaped. */
  private escapeNext = false;
  private partial: Buffer[] = [];
  private row = 0;
  /** Newlines before `lineCursor` in the current chunk, plus all earlier chunks. */
  private line = 1;
  private lineCursor = 0;
  private elementLine = 1;

  constructor(
    private readonly name: string,
    private readonly reject: RejectRecord,
  ) {}

  scan(chunk: Buffer): SourceRecord[] {
    const batch: SourceRecord[] = [];
    this.lineCursor = 0;
    let start = this.depth > 0 ? 0 : -1;
    let i = this.started || !startsWithByteOrderMark(chunk) ? 0 : 3;
    this.started = true;
    const length = chunk.length;
    while (i < length) {
      if (this.inString) {
        i = this.skipString(chunk, i);
        continue;
      }
      const byte = chunk[i];
      if (this.depth > 0) {
        if (byte === QUOTE) this.inString = true;
        else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) this.depth += 1;
        else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
          this.depth -= 1;
          if (this.depth === 0) {
            this.completeElement(chunk.subarray(start, i + 1), batch);
            start = -1;
          }
        }
      } else if (!isWhitespace(byte)) {
        if (this.phase === 'in-array' && byte === OPEN_BRACE) {
          this.elementLine = this.lineAt(chunk, i);
          this.depth = 1;
          start = i;
        } else this.structural(chunk, i);
      }
      i += 1;
    }
    if (start >= 0) this.partial.push(chunk.subarray(start));
    this.lineAt(chunk, length);
    return batch;
  }

  /** Throws unless the array was closed. */
  finish(): void {
    if (this.phase === 'after-array') return;
    const problem =
      this.phase === 'before-array' ? 'the file is empty' : 'the array is not closed (truncated file?)';
    throw new MegadocsError('BAD_INPUT', `not a complete JSON array: ${problem}`, {
      where: `${this.name}:${this.line}`,
      hint: 'A .json input must hold one array of objects; use .jsonl for one object per line',
    });
  }

  /** Skips string content from `i`; returns the index after the closing quote, or the chunk length. */
  private skipString(chunk: Buffer, i: number): number {
    let from = i;
    if (this.escapeNext) {
      this.escapeNext = false;
      from += 1;
      if (from >= chunk.length) return chunk.length;
    }
    const quote = chunk.indexOf(QUOTE, from);
    const runEnd = quote < 0 ? chunk.length : quote;
    let backslashes = 0;
    while (runEnd - backslashes - 1 >= from && chunk[runEnd - backslashes - 1] === BACKSLASH)
      backslashes += 1;
    const odd = backslashes % 2 === 1;
    if (quote < 0) {
      this.escapeNext = odd;
      return chunk.length;
    }
    if (!odd) this.inString = false;
    return quote + 1;
  }

  /** A byte outside any element: the array's brackets, commas, or something that does not belong. */
  private structural(chunk: Buffer, i: number): void {
    const byte = chunk[i];
    if (this.phase === 'before-array' && byte === OPEN_BRACKET) this.phase = 'in-array';
    else if (this.phase === 'in-array' && byte === CLOSE_BRACKET) this.phase = 'after-array';
    else if (this.phase === 'in-array' && byte === COMMA) return;
    else this.unexpected(chunk, i);
  }

  private unexpected(chunk: Buffer, i: number): never {
    const found = JSON.stringify(chunk.subarray(i, i + 12).toString('utf8'));
    const problem =
      this.phase === 'before-array'
        ? `not a JSON array: it starts with ${found}`
        : this.phase === 'after-array'
          ? `unexpected ${found} after the end of the array`
          : `array element ${this.row} is not an object: it starts with ${found}`;
    throw new MegadocsError('BAD_INPUT', problem, {
      where: `${this.name}:${this.lineAt(chunk, i)}`,
      hint: 'A .json input must hold one array of objects; use .jsonl for one object per line',
    });
  }

  private completeElement(tail: Buffer, batch: SourceRecord[]): void {
    this.partial.push(tail);
    const bytes = this.partial.length === 1 ? this.partial[0] : Buffer.concat(this.partial);
    this.partial = [];
    const row = this.row;
    this.row += 1;
    try {
      batch.push({ value: JSON.parse(bytes.toString('utf8')), row, line: this.elementLine });
    } catch (error) {
      this.reject(
        new MegadocsError('BAD_INPUT', `malformed JSON in array element ${row} (${messageOf(error)})`, {
          where: `${this.name}:${this.elementLine}`,
          hint: 'Fix this element, or pass --on-error skip to skip malformed records',
          cause: error,
        }),
      );
    }
  }

  /** The 1-based line of byte `i` of the current chunk (counts newlines since the last call). */
  private lineAt(chunk: Buffer, i: number): number {
    const region = chunk.subarray(this.lineCursor, i);
    for (
      let newline = region.indexOf(NEWLINE);
      newline >= 0;
      newline = region.indexOf(NEWLINE, newline + 1)
    ) {
      this.line += 1;
    }
    this.lineCursor = i;
    return this.line;
  }
}

function startsWithByteOrderMark(chunk: Buffer): boolean {
  return chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf;
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === NEWLINE || byte === 0x0d || byte === 0x09;
}
