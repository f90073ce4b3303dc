// The generate stage's reorder buffer: documents admitted and not yet handed downstream, in input order, the
// bytes they hold, and the lowest unfinished one (what the journal records to bound its replay).

interface Entry<T> {
  bytes: number;
  output?: T;
}

export class ReorderBuffer<T> {
  private readonly entries = new Map<number, Entry<T>>();
  /** The ordinal of the oldest document still held. */
  private head = 0;
  private next = 0;
  private unfinished = 0;
  private held = 0;

  /** Documents held (admitted, not yet taken). */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes held: each document's input text, plus its generated text once finished. */
  get bytes(): number {
    return this.held;
  }

  /** The lowest ordinal not yet finished: every document below it is done (or taken). */
  get lowestUnfinished(): number {
    return this.unfinished;
  }

  /** Holds the next document (its input text is `bytes` long); returns its ordinal. */
  admit(bytes: number): number {
    this.entries.set(this.next, { bytes });
    this.held += bytes;
    return this.next++;
  }

  /** Records the output of document `ordinal`, which adds `bytes` (its generated text). */
  finish(ordinal: number, output: T, bytes: number): void {
    const entry = this.entries.get(ordinal)!;
    entry.output = output;
    entry.bytes += bytes;
    this.held += bytes;
    while (this.unfinished < this.next && this.entries.get(this.unfinished)?.output !== undefined) {
      this.unfinished += 1;
    }
  }

  /** The oldest document's output when it is finished (it leaves the buffer), else undefined. */
  take(): T | undefined {
    const entry = this.entries.get(this.head);
    if (entry?.output === undefined) return undefined;
    this.entries.delete(this.head);
    this.head += 1;
    this.held -= entry.bytes;
    return entry.output;
  }
}
