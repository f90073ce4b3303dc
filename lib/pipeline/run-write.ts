// Phase two of `megadocs run`: the packed sequences (or, for Megatron, whole megadocs) read back from disk and
// written as one mixture (real seen E times, synthetic to weight w) or as two datasets plus mixture.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ZstdEngineChoice } from '../codecs/zstd.js';
import type { RunConfig } from '../config.js';
import { mixedOrder, mixtureSpec, orderedSequences, planMix, type SequenceRef, streamOrder } from '../mix.js';
import type { SequenceSpillReader } from '../sequence-spill.js';
import { mdsSink } from '../sinks/mds.js';
import { megatronSink } from '../sinks/megatron.js';
import { megatronFiles } from '../sinks/megatron-format.js';
import { memmapSink } from '../sinks/memmap.js';
import type { DocumentSpan, DocumentSpans } from '../sinks/memmap-spans.js';
import { completionFile } from '../sinks/output-index.js';
import { megatronTokenDtype, TOKEN_DTYPE_BYTES, tokenDtype } from '../sinks/token-dtype.js';
import { documentBosId, type TokenizerFacts } from '../tokenize/encoders.js';
import { type Sequence, STREAM_NAMES, type StreamName } from '../types.js';
import { dataPathUnder, entryWeight, megatronDataPath } from './run-megatron.js';
import type { RunProgress, WrittenDataset, WrittenOutput } from './run-stats.js';

export const MIXTURE_FILE = 'mixture.json';

/** Told the path of each file that lands (shards as they are written), e.g. to upload it. */
export type OnFileWritten = (path: string) => void;

const MEMMAP_MIXTURE_USAGE =
  'each of OUT/real and OUT/synthetic is a memmap (memmap.json): per trainer epoch take streams.real.choose ' +
  'rows of the real parts and streams.synthetic.choose rows of the synthetic ones (repeat: passes over each)';

/** The document spans inside the sequence written at each output position (for a memmap's span files). */
type SpansOf = (position: number) => DocumentSpan[];

function sinkFor(
  dir: string,
  config: RunConfig,
  tokenizer: TokenizerFacts,
  progress: RunProgress,
  zstdEngine: ZstdEngineChoice | undefined,
  onFile?: OnFileWritten,
  spansOf?: SpansOf,
): (sequences: Highland.Stream<Sequence>) => Promise<WrittenDataset> {
  if (config.format === 'memmap') {
    const sink = memmapSink({
      dir,
      dtype: tokenDtype(tokenizer.vocabSize, config.tokenDtype),
      seqLen: config.seqLen,
      partSize: config.shardSize,
      tokenizer: config.tokenizer,
      eosId: tokenizer.eosId,
      bosId: documentBosId(config.bos, tokenizer) ?? null,
      spansOf,
      onPart: (part) => {
        progress.write.shards += 1;
        onFile?.(join(dir, part.basename));
        if (part.spans) onFile?.(join(dir, part.spans));
      },
    });
    return async (sequences) => {
      const written = await sink(sequences);
      const bytes = written.tokens * TOKEN_DTYPE_BYTES[written.dtype];
      return {
        shards: written.files.length,
        samples: written.sequences,
        tokens: written.tokens,
        rawBytes: bytes,
        storedBytes: bytes,
      };
    };
  }
  if (config.format === 'megatron') {
    const sink = megatronSink({
      dir,
      prefix: config.prefix,
      dtype: megatronTokenDtype(tokenizer.vocabSize, config.tokenDtype),
    });
    return async (sequences) => {
      const written = await sink(sequences);
      progress.write.shards += 1;
      onFile?.(join(dir, megatronFiles(config.prefix).bin));
      const bytes = written.binBytes + written.idxBytes;
      return {
        shards: 1,
        samples: written.documents,
        tokens: written.tokens,
        rawBytes: bytes,
        storedBytes: bytes,
      };
    };
  }
  return mdsSink({
    dir,
    dtype: tokenDtype(tokenizer.vocabSize, config.tokenDtype),
    boundaries: config.boundaries,
    compression: config.compression,
    shardSize: config.shardSize,
    hashes: config.hashes,
    zstdEngine,
    onShard: (shard) => {
      progress.write.shards += 1;
      onFile?.(join(dir, shard.basename));
    },
  });
}

/** Phase two: the mixture (or each stream on its own), in shuffled or storage order, through the MDS sink. */
export async function writeOutput(
  spills: Record<StreamName, SequenceSpillReader>,
  config: RunConfig,
  out: string,
  tokenizer: TokenizerFacts,
  progress: RunProgress,
  zstdEngine: ZstdEngineChoice | undefined,
  onFile?: OnFileWritten,
  spans?: Record<StreamName, DocumentSpans>,
): Promise<WrittenOutput> {
  const available = { real: spills.real.sequences, synthetic: spills.synthetic.sequences };
  const totals = {
    real: { sequences: available.real, tokens: spills.real.tokens },
    synthetic: { sequences: available.synthetic, tokens: spills.synthetic.tokens },
  };
  const megatron = config.format === 'megatron';
  // Megatron entries are whole megadocs, of any length: w is matched in tokens, not in entries.
  const syntheticWeight = megatron
    ? entryWeight(config.syntheticWeight, config.realEpochs, totals)
    : config.syntheticWeight;
  const plan = planMix(available, { realEpochs: config.realEpochs, syntheticWeight });
  const order = { shuffle: config.shuffle, seed: config.shuffleSeed };
  const count = (ref: SequenceRef, sequence: Sequence) => {
    progress.write.written += 1;
    progress.write.tokens[ref.stream] += sequence.tokens.length;
  };
  progress.write.started = true;
  const seqLen = config.seqLen;
  const spansAt = (refAt: (position: number) => SequenceRef): SpansOf | undefined =>
    spans &&
    ((position) => {
      const ref = refAt(position);
      return spans[ref.stream].within(ref.index * seqLen, (ref.index + 1) * seqLen);
    });
  const datasets: Record<string, WrittenDataset> = {};
  if (config.streams === 'separate') {
    progress.write.planned = available.real + available.synthetic;
    for (const stream of STREAM_NAMES) {
      const dir = join(out, stream);
      await mkdir(dir, { recursive: true });
      const position = streamOrder(stream, available[stream], order);
      const refAt = (at: number): SequenceRef => ({ stream, index: position(at) });
      const sequences = orderedSequences(available[stream], refAt, spills, count);
      const sink = sinkFor(dir, config, tokenizer, progress, zstdEngine, onFile, spansAt(refAt));
      datasets[stream] = await sink(sequences);
      onFile?.(join(dir, completionFile(config)));
    }
    const spec = mixtureSpec(plan, totals);
    if (megatron) Object.assign(spec, megatronMixture(config, out, plan, totals));
    if (config.format === 'memmap') spec.usage = MEMMAP_MIXTURE_USAGE;
    await writeFile(join(out, MIXTURE_FILE), `${JSON.stringify(spec, null, 2)}\n`);
  } else {
    progress.write.planned = plan.total;
    const refAt = mixedOrder(plan, order);
    const sequences = orderedSequences(plan.total, refAt, spills, count);
    const sink = sinkFor(out, config, tokenizer, progress, zstdEngine, onFile, spansAt(refAt));
    datasets.mixture = await sink(sequences);
  }
  const realTokensSeen =
    config.streams === 'separate' ? spills.real.tokens * plan.realEpochs : progress.write.tokens.real;
  const syntheticTokensSeen =
    config.streams === 'separate'
      ? Math.round(spills.synthetic.tokens * plan.syntheticEpochs)
      : progress.write.tokens.synthetic;
  const tokensSeen = realTokensSeen + syntheticTokensSeen;
  return {
    datasets,
    mix: {
      streams: config.streams,
      realEpochs: plan.realEpochs,
      // Megatron's entries differ in length: the share that matters is the tokens'.
      syntheticWeight: megatron
        ? tokensSeen > 0
          ? syntheticTokensSeen / tokensSeen
          : 0
        : plan.syntheticWeight,
      syntheticEpochs: plan.syntheticEpochs,
      sequences: { real: plan.slots.real, synthetic: plan.slots.synthetic, total: plan.total },
      realTokensSeen,
      syntheticTokensSeen,
      shuffled: config.shuffle,
      shuffleSeed: config.shuffleSeed,
    },
  };
}

/** mixture.json's Megatron part: the `--data-path` that blends OUT/real/PREFIX and OUT/synthetic/PREFIX by w and E. */
function megatronMixture(
  config: RunConfig,
  out: string,
  plan: ReturnType<typeof planMix>,
  totals: Record<StreamName, { sequences: number; tokens: number }>,
) {
  const prefix = (stream: StreamName) => join(stream, config.prefix);
  const epochs = { real: plan.realEpochs, synthetic: plan.syntheticEpochs };
  const relative = megatronDataPath({ real: prefix('real'), synthetic: prefix('synthetic') }, totals, epochs);
  return {
    megatron: {
      prefix: config.prefix,
      dataPath: relative.dataPath,
      weights: relative.weights,
      trainTokens: relative.trainTokens,
    },
    usage: `pretrain_gpt.py --data-path ${dataPathUnder(out, relative.dataPath)} --train-samples TRAIN_TOKENS/SEQ_LENGTH (TRAIN_TOKENS = megatron.trainTokens; the paths in megatron.dataPath are relative to this file)`,
  };
}
