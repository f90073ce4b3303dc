// Writes flat token memmaps (OLMo-core's fixed-length numpy dataset, nanoGPT's np.memmap): OUT/part-NNNNN.npy of
// whole packed sequences, raw little-endian ids, no header; part-NNNNN.csv.gz document spans; memmap.json last.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { MegadocsError } from '../errors.js';
import { toAsyncIterable } from '../stream.js';
import type { Sequence } from '../types.js';
import { AtomicFiles } from './atomic.js';
import { type DocumentSpan, spanLines } from './memmap-spans.js';
import { type TokenDtype, tokenDtype } from './token-dtype.js';
import { TokenFile } from './token-file.js';

export const MEMMAP_INDEX = 'memmap.json';

export type MemmapDtype = TokenDtype;

/** uint16 when every id fits (a vocabulary under 65,536 tokens), else uint32 (--token-dtype: see tokenDtype). */
export function memmapDtype(vocabSize: number): MemmapDtype {
  return tokenDtype(vocabSize, undefined);
}

/** One part as memmap.json lists it. */
export interface MemmapPart {
  path: string;
  /** The part's `start,end,id` spans (gzipped CSV), or null when the writer was given none. */
  spans: string | null;
  tokens: number;
  sequences: number;
}

/** OUT/memmap.json: what a loader needs to open the parts (np.memmap(path, dtype).reshape(-1, seq_len)). */
export interface MemmapIndex {
  format: 'megadocs-memmap';
  version: 1;
  dtype: MemmapDtype;
  seq_len: number;
  tokenizer: string;
  eos_id: number;
  bos_id: number | null;
  sequences: number;
  tokens: number;
  files: MemmapPart[];
}

export interface MemmapWriterOptions {
  dir: string;
  dtype: MemmapDtype;
  seqLen: number;
  /** Bytes per part before the next one starts (whole sequences, at least one). */
  partSize: number;
  tokenizer: string;
  eosId: number;
  bosId: number | null;
  /** Write part-NNNNN.csv.gz with the document spans given to write(). */
  spans: boolean;
  /** Told each part that lands: its .npy and its spans file (null without spans). */
  onPart?: (info: { basename: string; spans: string | null; sequences: number }) => void;
}

export function partBasename(part: number, extension: 'npy' | 'csv.gz'): string {
  return `part-${String(part).padStart(5, '0')}.${extension}`;
}

/**
 * A memmap dataset being written: sequences appended to a temporary part file, landed (renamed, with its spans
 * file) when full; finish() writes memmap.json last, so a directory with one is complete.
 */
export class MemmapWriter {
  private readonly files = new AtomicFiles();
  private readonly parts: MemmapPart[] = [];
  private readonly perPart: number;
  private part: TokenFile | undefined;
  private partSequences = 0;
  private partSpans: DocumentSpan[] = [];
  private closed = false;

  private constructor(private readonly options: MemmapWriterOptions) {
    const width = options.dtype === 'uint16' ? 2 : 4;
    this.perPart = Math.max(1, Math.floor(options.partSize / (options.seqLen * width)));
  }

  /** Creates the directory and removes a stale memmap.json (it is written last). */
  static async open(options: MemmapWriterOptions): Promise<MemmapWriter> {
    await mkdir(options.dir, { recursive: true });
    await rm(path.join(options.dir, MEMMAP_INDEX), { force: true });
    return new MemmapWriter(options);
  }

  /** Appends one sequence of exactly seq_len tokens, with the document spans inside it (offsets in the sequence). */
  async write(tokens: Uint32Array, spans: readonly DocumentSpan[] = []): Promise<void> {
    const where = path.join(this.options.dir, partBasename(this.parts.length, 'npy'));
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'write after finish or abort', { where });
    if (tokens.length !== this.options.seqLen) {
      throw new MegadocsError(
        'BAD_INPUT',
        `a sequence of ${tokens.length} tokens, not ${this.options.seqLen}`,
        {
          where,
          hint: 'A memmap holds whole sequences of --seq-len tokens: use --tail drop or pad, and keep transforms to that length',
        },
      );
    }
    this.part ??= await TokenFile.create(this.files, where, this.options.dtype === 'uint16' ? 2 : 4);
    const offset = this.part.tokens;
    for (const span of spans)
      this.partSpans.push({ ...span, start: span.start + offset, end: span.end + offset });
    await this.part.append(tokens);
    this.partSequences += 1;
    if (this.partSequences === this.perPart) await this.landPart();
  }

  private async landPart(): Promise<void> {
    const file = this.part!;
    const index = this.parts.length;
    const spans = this.options.spans ? partBasename(index, 'csv.gz') : null;
    // The spans land first: a part under its final name always has its spans beside it.
    if (spans)
      await this.files.write(
        path.join(this.options.dir, spans),
        gzipSync(spanLines(mergeSplit(this.partSpans))),
      );
    await file.land();
    this.parts.push({
      path: partBasename(index, 'npy'),
      spans,
      tokens: file.tokens,
      sequences: this.partSequences,
    });
    this.options.onPart?.({ basename: partBasename(index, 'npy'), spans, sequences: this.partSequences });
    this.part = undefined;
    this.partSequences = 0;
    this.partSpans = [];
  }

  /** Lands the last part and writes memmap.json. */
  async finish(): Promise<MemmapIndex> {
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'finish called twice', { where: this.options.dir });
    if (this.part) await this.landPart();
    this.closed = true;
    const index: MemmapIndex = {
      format: 'megadocs-memmap',
      version: 1,
      dtype: this.options.dtype,
      seq_len: this.options.seqLen,
      tokenizer: this.options.tokenizer,
      eos_id: this.options.eosId,
      bos_id: this.options.bosId,
      sequences: this.parts.reduce((sum, part) => sum + part.sequences, 0),
      tokens: this.parts.reduce((sum, part) => sum + part.tokens, 0),
      files: this.parts,
    };
    await this.files.write(path.join(this.options.dir, MEMMAP_INDEX), `${JSON.stringify(index, null, 2)}\n`);
    return index;
  }

  /** Stops writing: removes the temporary part; writes no memmap.json. */
  async abort(): Promise<void> {
    this.closed = true;
    await this.part?.remove();
    this.part = undefined;
    await this.files.removeTemporaries();
  }
}

/** Adjacent pieces of one document (split only by a sequence boundary) as one span. */
function mergeSplit(spans: readonly DocumentSpan[]): DocumentSpan[] {
  const merged: DocumentSpan[] = [];
  for (const span of spans) {
    const last = merged.at(-1);
    if (last && last.id === span.id && last.end === span.start) last.end = span.end;
    else merged.push({ ...span });
  }
  return merged;
}

export interface MemmapSinkOptions extends Omit<MemmapWriterOptions, 'spans'> {
  /** The document spans inside the sequence written at `position` (omitted: no span files). */
  spansOf?: (position: number) => DocumentSpan[];
}

/** The memmap sink stage: every sequence into the parts, in the order it comes; resolves with memmap.json's content. */
export function memmapSink(
  options: MemmapSinkOptions,
): (input: Highland.Stream<Sequence>) => Promise<MemmapIndex> {
  return async (input) => {
    const writer = await MemmapWriter.open({ ...options, spans: options.spansOf !== undefined });
    let position = 0;
    try {
      for await (const sequence of toAsyncIterable(input)) {
        await writer.write(sequence.tokens, options.spansOf?.(position));
        position += 1;
      }
      return await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  };
}
