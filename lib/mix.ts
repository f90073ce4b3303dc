// Mixing the real and synthetic streams (METHODS.md §2): how many sequences of each a materialised mixture
// holds, in which order they are written (seeded shuffle, or evenly interleaved), and the mixture spec.
import { MegadocsError } from './errors.js';
import type { SequenceSpillReader } from './sequence-spill.js';
import { keyedPermutation } from './shuffle.js';
import { fromAsyncIterable } from './stream.js';
import type { Sequence, StreamName } from './types.js';

/** `mixed`: one materialised dataset; `separate`: OUT/real/ and OUT/synthetic/ plus OUT/mixture.json. */
export type StreamsMode = 'mixed' | 'separate';

export interface MixOptions {
  /** Times the real stream is seen (E). */
  realEpochs: number;
  /** Share of the tokens that are synthetic (w, in [0, 1)); unset: every synthetic sequence once. */
  syntheticWeight?: number;
}

/** How many sequences of each stream a mixture holds. */
export interface MixPlan {
  /** Distinct packed sequences of each stream. */
  available: Record<StreamName, number>;
  realEpochs: number;
  /** Slots of each stream: real = available.real x E; synthetic = what fills weight w. */
  slots: Record<StreamName, number>;
  total: number;
  /** The synthetic share of the slots (= w up to rounding when a weight was given). */
  syntheticWeight: number;
  /** Passes over the synthetic sequences (fractional when a weight asks for part of a pass). */
  syntheticEpochs: number;
}

/**
 * Real slots = R x E; with a weight w, synthetic slots = round(R x E x w / (1 - w)) (so the trainer's
 * total is R x E / (1 - w), as in the authors' experiments); without one, each synthetic sequence once.
 */
export function planMix(available: Record<StreamName, number>, options: MixOptions): MixPlan {
  const { realEpochs, syntheticWeight } = options;
  const realSlots = available.real * realEpochs;
  let syntheticSlots = available.synthetic;
  if (syntheticWeight !== undefined) {
    syntheticSlots = Math.round((realSlots * syntheticWeight) / (1 - syntheticWeight));
    if (syntheticSlots > 0 && available.synthetic === 0) {
      throw new MegadocsError(
        'BAD_INPUT',
        `a synthetic weight of ${syntheticWeight} needs synthetic sequences, and none were made`,
        {
          where: 'syntheticWeight',
          hint: 'Check the generate and assemble counts in megadocs.json (all dropped?), or lower --min-generations',
        },
      );
    }
  }
  const total = realSlots + syntheticSlots;
  return {
    available: { ...available },
    realEpochs,
    slots: { real: realSlots, synthetic: syntheticSlots },
    total,
    syntheticWeight: total > 0 ? syntheticSlots / total : 0,
    syntheticEpochs: available.synthetic > 0 ? syntheticSlots / available.synthetic : 0,
  };
}

/** Which stored sequence fills a slot of the output. */
export interface SequenceRef {
  stream: StreamName;
  /** Position among that stream's packed sequences. */
  index: number;
}

export interface OrderOptions {
  /** false keeps storage order. */
  shuffle: boolean;
  seed: number;
}

/**
 * Slot k of a stream with `slots` slots over `available` sequences: full passes in storage order, then a
 * last partial pass of evenly spaced sequences (so a fractional epoch is not biased to the first ones).
 */
export function passIndex(slot: number, slots: number, available: number): number {
  const fullPasses = Math.floor(slots / available);
  if (slot < fullPasses * available) return slot % available;
  const partial = slots - fullPasses * available;
  return Math.floor(((slot - fullPasses * available) * available) / partial);
}

/**
 * The sequence written at each output position of a mixture. Shuffled: a seeded permutation of all slots
 * (real slots first, then synthetic) over the whole output. Not shuffled: each stream in storage order,
 * the two interleaved evenly by their shares.
 */
export function mixedOrder(plan: MixPlan, order: OrderOptions): (position: number) => SequenceRef {
  const { slots, available, total } = plan;
  const slotRef = (slot: number): SequenceRef =>
    slot < slots.real
      ? { stream: 'real', index: slot % available.real }
      : { stream: 'synthetic', index: passIndex(slot - slots.real, slots.synthetic, available.synthetic) };
  if (order.shuffle) {
    const permute = keyedPermutation(total, order.seed, 'mixture');
    return (position) => slotRef(permute(position));
  }
  return (position) => {
    const syntheticBefore = Math.floor((position * slots.synthetic) / total);
    const isSynthetic = Math.floor(((position + 1) * slots.synthetic) / total) > syntheticBefore;
    return isSynthetic
      ? { stream: 'synthetic', index: passIndex(syntheticBefore, slots.synthetic, available.synthetic) }
      : { stream: 'real', index: (position - syntheticBefore) % available.real };
  };
}

/** The order of one stream written on its own (`--streams separate`): shuffled by its own key, or stored. */
export function streamOrder(
  stream: StreamName,
  count: number,
  order: OrderOptions,
): (position: number) => number {
  if (!order.shuffle) return (position) => position;
  return keyedPermutation(count, order.seed, stream);
}

/** The output's sequences in order, read from the spills as the sink pulls; `onSequence` sees each (for the counters). */
export function orderedSequences(
  total: number,
  refAt: (position: number) => SequenceRef,
  spills: Record<StreamName, SequenceSpillReader>,
  onSequence?: (ref: SequenceRef, sequence: Sequence) => void,
): Highland.Stream<Sequence> {
  function* sequences(): Generator<Sequence> {
    for (let position = 0; position < total; position += 1) {
      const ref = refAt(position);
      const sequence = spills[ref.stream].read(ref.index);
      onSequence?.(ref, sequence);
      yield sequence;
    }
  }
  return fromAsyncIterable(sequences());
}

export interface StreamTotals {
  sequences: number;
  tokens: number;
}

/**
 * OUT/mixture.json for `--streams separate`: per stream its folder, size and how many samples one
 * trainer epoch takes from it (`choose`, MosaicML Streaming's absolute count), and the weights.
 */
export function mixtureSpec(
  plan: MixPlan,
  totals: Record<StreamName, StreamTotals>,
): Record<string, unknown> {
  const stream = (name: StreamName, repeat: number) => ({
    local: name,
    samples: totals[name].sequences,
    tokens: totals[name].tokens,
    choose: plan.slots[name],
    repeat,
    proportion: plan.total > 0 ? plan.slots[name] / plan.total : 0,
  });
  return {
    format: 'megadocs-mixture',
    version: 1,
    syntheticWeight: plan.syntheticWeight,
    realEpochs: plan.realEpochs,
    syntheticEpochs: plan.syntheticEpochs,
    epochSamples: plan.total,
    streams: {
      real: stream('real', plan.realEpochs),
      synthetic: stream('synthetic', plan.syntheticEpochs),
    },
    usage:
      'streaming.StreamingDataset(streams=[Stream(local=OUT/real, choose=streams.real.choose), ' +
      'Stream(local=OUT/synthetic, choose=streams.synthetic.choose)], shuffle=True)',
  };
}
