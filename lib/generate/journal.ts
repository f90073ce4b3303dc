// The crash-proof journal of completed LLM requests in OUT/state/: one segment file per run, one JSON
// line per response, appended before the response goes downstream; a rerun replays it instead of paying again.
import { hash } from 'node:crypto';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CompletionRequest, CompletionResult } from '../backends/backend.js';
import { MegadocsError, messageOf } from '../errors.js';

/**
 * Why replay streams. Each run writes its own segment. Each line records, beside its document o, the lowest
 * document l still unfinished when it was written: every document below l was done, so once a segment shows
 * l > j it holds nothing more for document j. Replay reads each segment forward only that far, keeping what
 * it passes: the answers of documents the writing run held in its reorder buffer, so memory is bounded by
 * that buffer, not by the run. Version 1 segments (megadocs 0.1) instead record the engine's window W in
 * their header: a line of document o was written while every document below o - W + 1 was done, l = o - W + 1.
 * Only answers are journaled (and replayed; version 1 also wrote definitive failures, now sent again).
 */
export const SEGMENT_PATTERN = /^generate\.journal\.(\d{5})\.jsonl$/;
const JOURNAL_FORMAT = 'megadocs-generate-journal';

export type JournalOutcome =
  | { result: CompletionResult; failure?: undefined }
  | { failure: { reason: string; message: string }; result?: undefined };

const JOURNAL_VERSION = 2;

interface JournalHeader {
  journal: string;
  version: number;
  config: string;
  /** Version 1: documents in flight at most. */
  window?: number;
}

interface JournalLine {
  o: number;
  k: string;
  /** The answer (version 1 also wrote `f`, a definitive failure, in its place). */
  r?: CompletionResult;
  f?: unknown;
  /** The lowest unfinished document when the line was written (version 2). */
  l?: number;
}

export interface JournalOptions {
  stateDir: string;
  /** Hash of the options that decide the output; segments written under another hash are refused. */
  configHash: string;
  onWarning?: (message: string) => void;
}

/** The journal key of a request: a hash of everything that decides its answer (the label does not). */
export function requestKey(model: string, request: CompletionRequest): string {
  // Length-prefixed fields, hashed in one call (a Hash object and an update() per field cost more than the
  // joined string, which is about the size of the request body).
  const field = (value: string) => `${value.length}:${value}`;
  let fields = field(model) + field(request.messages ? `chat ${request.messages.length}` : 'text');
  for (const message of request.messages ?? []) fields += field(message.role) + field(message.content);
  if (request.prompt !== undefined) fields += field(request.prompt);
  const sampling = [request.n, request.temperature, request.topP, request.maxTokens, request.seed];
  fields += field(JSON.stringify([...sampling, request.responseFormat ?? null]));
  return hash('sha256', fields, 'hex').slice(0, 32);
}

export function segmentName(index: number): string {
  return `generate.journal.${String(index).padStart(5, '0')}.jsonl`;
}

/** Reads one segment forward, keeping only the responses of documents that may still be asked for. */
class SegmentReader {
  private readonly pending = new Map<number, Map<string, JournalOutcome>>();
  private readonly input: ReturnType<typeof createReadStream>;
  private readonly lines: AsyncIterator<string>;
  private lineNumber = 0;
  /** Every document below this one is complete in the lines read so far. */
  private complete = 0;
  private nextOrdinal = 0;
  private done = false;
  /** Version 1's window; undefined for version 2, whose lines say where they stand. */
  private window?: number;

  constructor(
    readonly path: string,
    private readonly onWarning: (message: string) => void,
  ) {
    this.input = createReadStream(path, { encoding: 'utf8' });
    this.lines = createInterface({ input: this.input, crlfDelay: Number.POSITIVE_INFINITY })[
      Symbol.asyncIterator
    ]();
  }

  close(): void {
    this.input.destroy();
  }

  /** Reads and checks the header; false when the segment is empty or its header was torn. */
  async readHeader(configHash: string): Promise<boolean> {
    const first = await this.nextLine();
    if (first === undefined) return this.finish(false);
    let header: JournalHeader;
    try {
      header = JSON.parse(first) as JournalHeader;
    } catch {
      if ((await this.nextLine()) !== undefined) throw this.corrupt(1, 'the header line is not JSON');
      this.onWarning(`${this.path}: ignored a torn header line (the run was killed while starting)`);
      return this.finish(false);
    }
    const known =
      header.journal === JOURNAL_FORMAT &&
      (header.version === JOURNAL_VERSION ||
        (header.version === 1 && Number.isInteger(header.window) && header.window! >= 1));
    if (!known) throw this.corrupt(1, 'not a megadocs generate journal');
    if (header.config !== configHash) {
      throw new MegadocsError(
        'JOURNAL',
        `this journal was written by a run with other options (config ${header.config.slice(0, 12)}, ` +
          `this run ${configHash.slice(0, 12)})`,
        {
          where: this.path,
          hint: 'Rerun with the options of that run to continue it, or pass --overwrite to start over',
        },
      );
    }
    if (header.version === 1) this.window = header.window;
    return true;
  }

  /** Every journaled outcome of document `ordinal`; ordinals must be asked for in increasing order. */
  async take(ordinal: number): Promise<Map<string, JournalOutcome> | undefined> {
    this.nextOrdinal = ordinal;
    while (!this.done && this.complete <= ordinal) await this.readOne();
    const found = this.pending.get(ordinal);
    this.pending.delete(ordinal);
    this.nextOrdinal = ordinal + 1;
    return found;
  }

  private async readOne(): Promise<void> {
    const text = await this.nextLine();
    if (text === undefined) {
      this.finish(true);
      return;
    }
    if (text === '') return;
    let line: JournalLine;
    try {
      line = JSON.parse(text) as JournalLine;
    } catch {
      const at = this.lineNumber;
      if ((await this.nextLine()) !== undefined) throw this.corrupt(at, 'a line in the middle is not JSON');
      this.onWarning(
        `${this.path}:${at}: ignored a torn last line (the run was killed while writing it); ` +
          'that request will be sent again',
      );
      this.finish(true);
      return;
    }
    const placed = this.window !== undefined || typeof line.l === 'number';
    if (typeof line.o !== 'number' || typeof line.k !== 'string' || !placed || (!line.r && !line.f)) {
      throw this.corrupt(
        this.lineNumber,
        'a line lacks its document, key, outcome or lowest unfinished document',
      );
    }
    const lowest = this.window === undefined ? line.l! : line.o - this.window + 1;
    this.complete = Math.max(this.complete, lowest);
    if (line.o < this.nextOrdinal || !line.r) return;
    let outcomes = this.pending.get(line.o);
    if (!outcomes) {
      outcomes = new Map();
      this.pending.set(line.o, outcomes);
    }
    outcomes.set(line.k, { result: line.r });
  }

  private async nextLine(): Promise<string | undefined> {
    const next = await this.lines.next();
    if (next.done) return undefined;
    this.lineNumber += 1;
    return next.value;
  }

  private finish(value: boolean): boolean {
    this.done = true;
    this.close();
    return value;
  }

  private corrupt(line: number, what: string): MegadocsError {
    return new MegadocsError('CORRUPT', `${what}`, {
      where: `${this.path}:${line}`,
      hint: 'The journal was changed by something other than megadocs: pass --overwrite to start over',
    });
  }
}

/**
 * Appends lines to this run's segment. Appends made in the same turn of the event loop (every answer read in
 * one poll) are written together by one synchronous write at its end: a few microseconds for the page cache,
 * cheaper than a thread-pool round trip or a system call per line, and once `write` returns the lines survive
 * a killed process. No append resolves before its line is written.
 */
class SegmentWriter {
  private lines: string[] = [];
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  append(text: string): Promise<void> {
    if (this.lines.length === 0) setImmediate(() => this.flush());
    this.lines.push(text);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.join(''));
    const waiters = this.waiters;
    this.lines = [];
    this.waiters = [];
    try {
      for (let written = 0; written < bytes.length; ) written += writeSync(this.fd, bytes, written);
    } catch (error) {
      const failure = new MegadocsError('IO', `cannot append to the journal (${messageOf(error)})`, {
        where: this.path,
        hint: 'Check free space and permissions of the output directory, then rerun to continue',
      });
      for (const waiter of waiters) waiter.reject(failure);
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }
}

export class Journal {
  private constructor(
    private readonly readers: SegmentReader[],
    private readonly writer: SegmentWriter,
  ) {}

  /** Checks every earlier segment (same config, well-formed header) and starts this run's segment. */
  static async open(options: JournalOptions): Promise<Journal> {
    const onWarning = options.onWarning ?? (() => {});
    const indexes = (await readdir(options.stateDir))
      .map((name) => SEGMENT_PATTERN.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    const readers: SegmentReader[] = [];
    for (const index of indexes) {
      const reader = new SegmentReader(join(options.stateDir, segmentName(index)), onWarning);
      if (await reader.readHeader(options.configHash)) readers.push(reader);
    }
    const path = join(options.stateDir, segmentName((indexes.at(-1) ?? -1) + 1));
    const fd = openSync(path, 'ax');
    const header: JournalHeader = {
      journal: JOURNAL_FORMAT,
      version: JOURNAL_VERSION,
      config: options.configHash,
    };
    writeSync(fd, `${JSON.stringify(header)}\n`);
    return new Journal(readers, new SegmentWriter(path, fd));
  }

  /** Whether earlier runs left responses to replay. */
  get resuming(): boolean {
    return this.readers.length > 0;
  }

  /** The journaled outcomes of document `ordinal` (by request key). Ask in increasing ordinal order. */
  async replay(ordinal: number): Promise<Map<string, JournalOutcome>> {
    const merged = new Map<string, JournalOutcome>();
    for (const reader of this.readers) {
      const found = await reader.take(ordinal);
      if (found) for (const [key, outcome] of found) merged.set(key, outcome);
    }
    return merged;
  }

  /**
   * Appends the answer of document `ordinal` while every document below `lowestUnfinished` is done (no more
   * lines for them); resolves once it is written (in the OS, so a killed process keeps it).
   */
  append(ordinal: number, key: string, result: CompletionResult, lowestUnfinished: number): Promise<void> {
    // Fields in this order: reused answers are found by a line's first bytes (journal-reuse.ts).
    const line: JournalLine = { o: ordinal, k: key, r: result, l: lowestUnfinished };
    return this.writer.append(`${JSON.stringify(line)}\n`);
  }

  close(): void {
    for (const reader of this.readers) reader.close();
    this.writer.close();
  }
}
