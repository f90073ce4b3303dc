// Phase two of `megadocs run`: the packed sequences read back from disk and written as one mixture (real
// seen E times, synthetic to weight w) or as two datasets plus mixture.json, shuffled by seed or in storage order.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ZstdEngineChoice } from '../codecs/zstd.js';
import type { RunConfig } from '../config.js';
import { mixedOrder, mixtureSpec, orderedSequences, planMix, type SequenceRef, streamOrder } from '../mix.js';
import type { SequenceSpillReader } from '../sequence-spill.js';
import { mdsSink } from '../sinks/mds.js';
import type { TokenizerFacts } from '../tokenize/encoders.js';
import { type Sequence, STREAM_NAMES, type StreamName } from '../types.js';
import type { RunProgress, WrittenDataset, WrittenOutput } from './run-stats.js';

export const MIXTURE_FILE = 'mixture.json';

/** Told the path of each file that lands (shards as they are written), e.g. to upload it. */
export type OnFileWritten = (path: string) => void;

function sinkFor(
  dir: string,
  config: RunConfig,
  tokenizer: TokenizerFacts,
  progress: RunProgress,
  zstdEngine: ZstdEngineChoice | undefined,
  onFile?: OnFileWritten,
) {
  return mdsSink({
    dir,
    dtype: tokenizer.vocabSize < 65_536 ? 'uint16' : 'uint32',
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
): Promise<WrittenOutput> {
  const available = { real: spills.real.sequences, synthetic: spills.synthetic.sequences };
  const plan = planMix(available, { realEpochs: config.realEpochs, syntheticWeight: config.syntheticWeight });
  const order = { shuffle: config.shuffle, seed: config.shuffleSeed };
  const count = (ref: SequenceRef, sequence: Sequence) => {
    progress.write.written += 1;
    progress.write.tokens[ref.stream] += sequence.tokens.length;
  };
  progress.write.started = true;
  const datasets: Record<string, WrittenDataset> = {};
  if (config.streams === 'separate') {
    progress.write.planned = available.real + available.synthetic;
    for (const stream of STREAM_NAMES) {
      const dir = join(out, stream);
      await mkdir(dir, { recursive: true });
      const position = streamOrder(stream, available[stream], order);
      const sequences = orderedSequences(
        available[stream],
        (at) => ({ stream, index: position(at) }),
        spills,
        count,
      );
      datasets[stream] = await sinkFor(dir, config, tokenizer, progress, zstdEngine, onFile)(sequences);
      onFile?.(join(dir, 'index.json'));
    }
    const totals = {
      real: { sequences: available.real, tokens: spills.real.tokens },
      synthetic: { sequences: available.synthetic, tokens: spills.synthetic.tokens },
    };
    const spec = mixtureSpec(plan, totals);
    await writeFile(join(out, MIXTURE_FILE), `${JSON.stringify(spec, null, 2)}\n`);
  } else {
    progress.write.planned = plan.total;
    const sequences = orderedSequences(plan.total, mixedOrder(plan, order), spills, count);
    datasets.mixture = await sinkFor(out, config, tokenizer, progress, zstdEngine, onFile)(sequences);
  }
  const realTokensSeen =
    config.streams === 'separate' ? spills.real.tokens * plan.realEpochs : progress.write.tokens.real;
  return {
    datasets,
    mix: {
      streams: config.streams,
      realEpochs: plan.realEpochs,
      syntheticWeight: plan.syntheticWeight,
      syntheticEpochs: plan.syntheticEpochs,
      sequences: { real: plan.slots.real, synthetic: plan.slots.synthetic, total: plan.total },
      realTokensSeen,
      syntheticTokensSeen:
        config.streams === 'separate'
          ? Math.round(spills.synthetic.tokens * plan.syntheticEpochs)
          : progress.write.tokens.synthetic,
      shuffled: config.shuffle,
      shuffleSeed: config.shuffleSeed,
    },
  };
}
