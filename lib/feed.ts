// Streams a dataset's tokens (MDS, memmap, Megatron) to a trainer as raw little-endian integers: storage order,
// or a seeded sequence-level shuffle with bounded memory (shard order permuted, then samples within windows).
import type { Writable } from 'node:stream';
import { MegadocsError } from './errors.js';
import { type FeedUnit, feedUnits, type LoadedUnit } from './feed-units.js';
import { keyedPermutation } from './shuffle.js';

export interface FeedOptions {
  /** Shuffle at sequence level with this seed; storage order when absent. */
  shuffleSeed?: number;
  /** Shards whose samples are shuffled together (default 4): memory holds this many raw shards. */
  windowShards?: number;
  /** Passes over the dataset (default 1); each shuffled epoch has its own permutation. */
  epochs?: number;
}

export const DEFAULT_WINDOW_SHARDS = 4;

/** The tokens of one sample, with where it came from (for error messages). */
export interface FedSequence {
  tokens: ArrayLike<number> & ArrayBufferView;
  shard: string;
  sample: number;
}

/**
 * Every sample's tokens, epoch after epoch. Shuffled: each epoch permutes the shard order (keyed by seed
 * and epoch), takes the shards `windowShards` at a time, and yields the samples of each window in a keyed
 * permutation of the window; so a sample can land anywhere within its window, and memory is one window.
 * A shard is an MDS shard, a memmap part, or a run of 4096 Megatron entries (feed-units.ts).
 */
export async function* feedSequences(dir: string, options: FeedOptions = {}): AsyncGenerator<FedSequence> {
  const epochs = options.epochs ?? 1;
  const window = options.windowShards ?? DEFAULT_WINDOW_SHARDS;
  if (!Number.isInteger(epochs) || epochs < 1) {
    throw new MegadocsError('BAD_OPTION', `--epochs ${epochs} must be a whole number >= 1`, {
      where: 'epochs',
    });
  }
  if (!Number.isInteger(window) || window < 1) {
    throw new MegadocsError('BAD_OPTION', `--window-shards ${window} must be a whole number >= 1`, {
      where: 'window',
    });
  }
  const shards = await feedUnits(dir);
  const fed = (unit: LoadedUnit, at: number): FedSequence => ({
    tokens: unit.tokens(at),
    shard: unit.name,
    sample: at,
  });
  for (let epoch = 0; epoch < epochs; epoch += 1) {
    if (options.shuffleSeed === undefined) {
      for (const entry of shards) {
        const shard = await entry.load();
        for (let at = 0; at < shard.count; at += 1) yield fed(shard, at);
      }
      continue;
    }
    const seed = options.shuffleSeed;
    const shardOrder = keyedPermutation(shards.length, seed, `feed shards, epoch ${epoch}`);
    const ordered: FeedUnit[] = shards.map((_entry, at) => shards[shardOrder(at)]!);
    for (let first = 0; first < ordered.length; first += window) {
      const loaded: LoadedUnit[] = [];
      for (const entry of ordered.slice(first, first + window)) loaded.push(await entry.load());
      const starts: number[] = [];
      let total = 0;
      for (const shard of loaded) {
        starts.push(total);
        total += shard.count;
      }
      const sampleOrder = keyedPermutation(
        total,
        seed,
        `feed samples, epoch ${epoch}, window ${first / window}`,
      );
      for (let at = 0; at < total; at += 1) {
        const position = sampleOrder(at);
        let which = loaded.length - 1;
        while (starts[which]! > position) which -= 1;
        yield fed(loaded[which]!, position - starts[which]!);
      }
    }
  }
}

export interface FeedSummary {
  samples: number;
  tokens: number;
  bytes: number;
  /** True when the reader closed the pipe before the end (EPIPE): not an error for a trainer. */
  closedEarly: boolean;
}

const CHUNK_BYTES = 1 << 20;

/** Resolves on 'drain', or when the stream closes or fails (EPIPE): never rejects. */
function drainOrClose(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

/** `tokens` as little-endian bytes of `dtype`; uint16 refuses ids of 65536 and above, naming the sample. */
function encodeTokens(sequence: FedSequence, dtype: 'uint16' | 'uint32'): Buffer {
  const { tokens } = sequence;
  const Type = dtype === 'uint16' ? Uint16Array : Uint32Array;
  if (tokens instanceof Type) return Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength);
  const out = new Type(tokens.length);
  const largest = dtype === 'uint16' ? 0xffff : 0xffff_ffff;
  for (let at = 0; at < tokens.length; at += 1) {
    const id = tokens[at]!;
    if (!Number.isInteger(id) || id < 0 || id > largest) {
      throw new MegadocsError('BAD_OPTION', `token id ${id} does not fit ${dtype}`, {
        where: `${sequence.shard}: sample ${sequence.sample}`,
        hint: 'Use --dtype uint32 (the vocabulary has ids of 65536 and above)',
      });
    }
    out[at] = id;
  }
  return Buffer.from(out.buffer);
}

/**
 * Writes every fed sequence to `out` as raw integers, in chunks of about 1 MiB, waiting for 'drain' when
 * the reader is slower. Resolves with closedEarly when the reader closes the pipe (EPIPE).
 */
export async function writeFeed(
  dir: string,
  out: Writable,
  options: FeedOptions & { dtype?: 'uint16' | 'uint32' } = {},
): Promise<FeedSummary> {
  const dtype = options.dtype ?? 'uint32';
  const summary: FeedSummary = { samples: 0, tokens: 0, bytes: 0, closedEarly: false };
  let failure: NodeJS.ErrnoException | undefined;
  const onError = (error: NodeJS.ErrnoException) => {
    failure ??= error;
  };
  out.on('error', onError); // stays attached: a late EPIPE must not crash the process
  const closed = () => failure !== undefined || out.destroyed;
  const flush = async (parts: Buffer[]) => {
    if (parts.length === 0 || closed()) return;
    if (!out.write(parts.length === 1 ? parts[0] : Buffer.concat(parts))) {
      await drainOrClose(out);
    }
  };
  let parts: Buffer[] = [];
  let pending = 0;
  for await (const sequence of feedSequences(dir, options)) {
    if (closed()) break;
    const bytes = encodeTokens(sequence, dtype);
    parts.push(bytes);
    pending += bytes.length;
    summary.samples += 1;
    summary.tokens += sequence.tokens.length;
    summary.bytes += bytes.length;
    if (pending >= CHUNK_BYTES) {
      await flush(parts);
      parts = [];
      pending = 0;
    }
  }
  await flush(parts);
  if (failure && failure.code !== 'EPIPE') {
    throw new MegadocsError('IO', `cannot write the token stream (${failure.message})`, { where: 'stdout' });
  }
  summary.closedEarly = closed();
  return summary;
}
