// Paid answers survive a changed command (`--reuse-journal`): the replaced run's journal segments are set aside
// in OUT/state/reused/, indexed by request key, and an answer is read back from its segment when a request asks.

import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompletionResult } from '../backends/backend.js';
import { MegadocsError, messageOf } from '../errors.js';
import { type JournalOutcome, SEGMENT_PATTERN, segmentName } from './journal.js';
import { KeyLocations } from './journal-reuse-index.js';

export const REUSED_DIR = 'reused';

/** How Journal.append writes an answer's line: its key is read from the line's first bytes, without parsing. */
const ANSWER_LINE_HEAD = /^\{"o":\d+,"k":"([0-9a-f]{32})","r":/;
const HEAD_BYTES = 96;
const READ_BYTES = 1 << 20;

/** The journal segments in `dir`, by index. */
async function segmentsIn(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw ioError('cannot read the journal folder', dir, error);
  });
  return names
    .map((name) => SEGMENT_PATTERN.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => a - b);
}

function ioError(what: string, where: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `${what} (${messageOf(error)})`, {
    where,
    hint: 'Check the permissions and free space of the output directory, then rerun',
    cause: error,
  });
}

/**
 * Moves the journal segments of `stateDir` (the run being replaced) into `stateDir/reused/`, numbered after
 * those already there, so the new run's own journal starts empty. Returns how many were moved.
 */
export async function setAsideJournal(stateDir: string): Promise<number> {
  const current = await segmentsIn(stateDir);
  if (current.length === 0) return 0;
  const reusedDir = join(stateDir, REUSED_DIR);
  await mkdir(reusedDir, { recursive: true });
  let next = ((await segmentsIn(reusedDir)).at(-1) ?? -1) + 1;
  for (const index of current) {
    const target = join(reusedDir, segmentName(next));
    await rename(join(stateDir, segmentName(index)), target).catch((error: unknown) => {
      throw ioError('cannot set the journal aside', target, error);
    });
    next += 1;
  }
  return current.length;
}

/** The answers of the set-aside segments, found by request key and read back from disk on a hit. */
export class ReusedAnswers {
  private constructor(
    private readonly files: Array<{ path: string; handle: FileHandle }>,
    private readonly locations: KeyLocations,
  ) {}

  /** Indexes `stateDir/reused/`; undefined when no run was set aside there. */
  static async open(stateDir: string): Promise<ReusedAnswers | undefined> {
    const reusedDir = join(stateDir, REUSED_DIR);
    const indexes = await segmentsIn(reusedDir);
    if (indexes.length === 0) return undefined;
    const files: Array<{ path: string; handle: FileHandle }> = [];
    const locations = new KeyLocations();
    try {
      for (const index of indexes) {
        const path = join(reusedDir, segmentName(index));
        const handle = await open(path, 'r').catch((error: unknown) => {
          throw ioError('cannot open a reused journal segment', path, error);
        });
        files.push({ path, handle });
        await indexAnswers(path, handle, files.length - 1, locations);
      }
    } catch (error) {
      await Promise.all(files.map((file) => file.handle.close()));
      throw error;
    }
    return new ReusedAnswers(files, locations);
  }

  /** Answers that can be reused. */
  get size(): number {
    return this.locations.size;
  }

  /** The journaled answer to the request with this key, if an earlier run paid for it. */
  async lookup(key: string): Promise<JournalOutcome | undefined> {
    const location = this.locations.get(key);
    if (!location) return undefined;
    const file = this.files[location.segment]!;
    const bytes = Buffer.allocUnsafe(location.length);
    try {
      await file.handle.read(bytes, 0, location.length, location.offset);
    } catch (error) {
      throw ioError('cannot read a reused journal segment', file.path, error);
    }
    let line: { k?: string; r?: CompletionResult };
    try {
      line = JSON.parse(bytes.toString('utf8'));
    } catch {
      return undefined; // a line torn by a killed run: the request is sent
    }
    return line.k === key && line.r ? { result: line.r } : undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((file) => file.handle.close()));
  }
}

/**
 * Adds the location of every answer line of one segment (not failures, not the header), reading it in large
 * pieces and looking only at each line's first bytes. A last line without its newline (torn) is left out.
 */
async function indexAnswers(
  path: string,
  handle: FileHandle,
  segment: number,
  locations: KeyLocations,
): Promise<void> {
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  let position = 0;
  let lineStart = 0;
  let head = Buffer.alloc(0);
  while (true) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, READ_BYTES, position));
    } catch (error) {
      throw ioError('cannot read a reused journal segment', path, error);
    }
    if (bytesRead === 0) return;
    const piece = buffer.subarray(0, bytesRead);
    let from = 0;
    for (let newline = piece.indexOf(10); newline !== -1; newline = piece.indexOf(10, from)) {
      const start = piece.subarray(from, Math.min(newline, from + HEAD_BYTES));
      const lineHead = head.length > 0 ? Buffer.concat([head, start]) : start;
      const match = ANSWER_LINE_HEAD.exec(lineHead.toString('latin1'));
      const lineEnd = position + newline;
      if (match) locations.add(match[1]!, { segment, offset: lineStart, length: lineEnd - lineStart });
      from = newline + 1;
      lineStart = lineEnd + 1;
      head = Buffer.alloc(0);
    }
    if (head.length < HEAD_BYTES) {
      const more = piece.subarray(from, from + HEAD_BYTES - head.length);
      head = Buffer.concat([head, more]);
    }
    position += bytesRead;
  }
}
