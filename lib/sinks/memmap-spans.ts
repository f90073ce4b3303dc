// Where each document lies in a stream of packed sequences, for the memmap sink's per-part span files
// (`start,end,id` as dolma writes them): recorded from the tokenized documents in packing order, looked up by sequence.
import type { Stage, TokenizedDoc } from '../types.js';

/** A document's tokens inside one sequence or part: [start, end) local offsets. */
export interface DocumentSpan {
  start: number;
  end: number;
  id: string;
}

/**
 * The documents of one packed stream, each at its offset in the stream's tokens (EOS/BOS included), in
 * packing order. Packed sequence k holds stream tokens [k x seqLen, (k + 1) x seqLen).
 */
export class DocumentSpans {
  private starts: number[] = [];
  private ids: string[] = [];
  /** Documents before this one were forgotten (forgetBefore). */
  private first = 0;
  private end = 0;

  record(id: string, length: number): void {
    if (length === 0) return;
    this.starts.push(this.end);
    this.ids.push(id);
    this.end += length;
  }

  /**
   * Forgets the documents that end at or before stream token `offset`, for a writer that goes through the
   * stream in order (pack): memory then holds the documents of the sequences in flight, not all of them.
   */
  forgetBefore(offset: number): void {
    while (this.first + 1 < this.starts.length && this.starts[this.first + 1]! <= offset) this.first += 1;
    if (this.first >= 4096 && this.first * 2 >= this.starts.length) {
      this.starts = this.starts.slice(this.first);
      this.ids = this.ids.slice(this.first);
      this.first = 0;
    }
  }

  /** The documents inside stream tokens [from, to), as offsets from `from`. */
  within(from: number, to: number): DocumentSpan[] {
    // The last document starting at or before `from`.
    let low = this.first;
    let high = this.starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.starts[middle]! <= from) low = middle;
      else high = middle - 1;
    }
    const spans: DocumentSpan[] = [];
    for (let at = low; at < this.starts.length && this.starts[at]! < to; at += 1) {
      const end = at + 1 < this.starts.length ? this.starts[at + 1]! : this.end;
      if (end <= from) continue;
      spans.push({
        start: Math.max(this.starts[at]!, from) - from,
        end: Math.min(end, to) - from,
        id: this.ids[at]!,
      });
    }
    return spans;
  }
}

/** Records each tokenized document (its id and length) in `spans` on its way to packing. */
export function recordSpans(spans: DocumentSpans): Stage<TokenizedDoc, TokenizedDoc> {
  return (input) =>
    input.map((doc) => {
      spans.record(doc.id, doc.tokens.length);
      return doc;
    });
}

/** One CSV field: quoted when it holds a comma, a quote or a line break. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function spanLines(spans: readonly DocumentSpan[]): string {
  return spans.map((span) => `${span.start},${span.end},${csvField(span.id)}\n`).join('');
}
