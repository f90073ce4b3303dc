// The pack stage: concatenates tokenized documents in input order and cuts them into sequences of exactly
// seqLen tokens, optionally recording where segments start; the last partial sequence is dropped, padded or kept.
import { MegadocsError } from './errors.js';
import { highland as _ } from './stream.js';
import type { Sequence, Stage, TokenizedDoc } from './types.js';

export type TailMode = 'drop' | 'pad' | 'keep';

interface PackSettings {
  seqLen: number;
  /** Record segment starts (0 and every document start) in `Sequence.boundaries`. */
  boundaries: boolean;
  stats?: PackStats;
}

/** What happens to the last partial sequence: dropped or kept shorter, or padded with `padId` (usually EOS). */
export type PackOptions = PackSettings &
  ({ tail: Exclude<TailMode, 'pad'>; padId?: number } | { tail: 'pad'; padId: number });

export interface PackStats {
  documents: number;
  tokens: number;
  sequences: number;
  droppedTokens: number;
  paddedTokens: number;
}

export function newPackStats(): PackStats {
  return { documents: 0, tokens: 0, sequences: 0, droppedTokens: 0, paddedTokens: 0 };
}

export const TAIL_MODES: readonly TailMode[] = ['drop', 'pad', 'keep'];

/** Fills one sequence at a time; `add` returns the sequences it completed. */
class SequenceBuilder {
  private buffer: Uint32Array;
  private fill = 0;
  private starts: number[] = [0];

  constructor(private readonly options: PackOptions) {
    this.buffer = new Uint32Array(options.seqLen);
  }

  add(tokens: Uint32Array, done: Sequence[]): void {
    const { seqLen } = this.options;
    if (this.fill > 0 && tokens.length > 0) this.starts.push(this.fill);
    let offset = 0;
    while (offset < tokens.length) {
      const take = Math.min(seqLen - this.fill, tokens.length - offset);
      this.buffer.set(tokens.subarray(offset, offset + take), this.fill);
      this.fill += take;
      offset += take;
      if (this.fill === seqLen) done.push(this.emit(this.buffer));
    }
  }

  /** The last partial sequence per the tail mode, if any. */
  finish(stats: PackStats): Sequence | undefined {
    if (this.fill === 0) return undefined;
    const { tail, padId, seqLen } = this.options;
    if (tail === 'drop') {
      stats.droppedTokens += this.fill;
      return undefined;
    }
    if (tail === 'keep') return this.emit(this.buffer.slice(0, this.fill));
    stats.paddedTokens += seqLen - this.fill;
    this.buffer.fill(padId ?? 0, this.fill);
    return this.emit(this.buffer);
  }

  private emit(tokens: Uint32Array): Sequence {
    const sequence: Sequence = { tokens };
    if (this.options.boundaries) sequence.boundaries = Uint32Array.from(this.starts);
    this.buffer = new Uint32Array(this.options.seqLen);
    this.fill = 0;
    this.starts = [0];
    return sequence;
  }
}

/** The longest sequence: 2^24 tokens (64 MiB of uint32 per sequence buffer). */
export const MAX_SEQ_LEN = 2 ** 24;

export function validatePackOptions(options: PackOptions): void {
  if (!Number.isInteger(options.seqLen) || options.seqLen < 1 || options.seqLen > MAX_SEQ_LEN) {
    throw new MegadocsError(
      'BAD_OPTION',
      `--seq-len must be a whole number from 1 to ${MAX_SEQ_LEN} (2^24), got ${options.seqLen}`,
    );
  }
  if (!TAIL_MODES.includes(options.tail)) {
    throw new MegadocsError(
      'BAD_OPTION',
      `--tail must be one of ${TAIL_MODES.join(', ')}, got "${options.tail}"`,
    );
  }
  if (options.tail === 'pad' && options.padId === undefined) {
    throw new MegadocsError('BAD_OPTION', '--tail pad needs a pad token id');
  }
}

/** Packs documents (in order) into fixed-length sequences; never emits an empty sequence. */
export function packStage(options: PackOptions): Stage<TokenizedDoc, Sequence> {
  validatePackOptions(options);
  const stats = options.stats ?? newPackStats();
  return (input) => {
    // Per stream: the same stage value may pack several streams (each with its own partial sequence).
    const builder = new SequenceBuilder(options);
    return input.consume<Sequence>((error, doc, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      if (_.isNil(doc)) {
        const last = builder.finish(stats);
        if (last) {
          stats.sequences += 1;
          push(null, last);
        }
        push(null, _.nil);
        return;
      }
      const done: Sequence[] = [];
      builder.add(doc.tokens, done);
      stats.documents += 1;
      stats.tokens += doc.tokens.length;
      stats.sequences += done.length;
      for (const sequence of done) push(null, sequence);
      next();
    });
  };
}
