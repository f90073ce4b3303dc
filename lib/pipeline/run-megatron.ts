// `megadocs run --format megatron`: each stream's tokenized parts grouped back into whole megadocs (one index
// entry each, its parts ending with EOD, contiguous), the entry count that matches w in tokens, the --data-path line.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PackStats } from '../pack.js';
import { highland as _ } from '../stream.js';
import type { Sequence, Stage, StreamName, TokenizedDoc } from '../types.js';
import type { Step } from './steps.js';

/** A part's position in its megadoc: partsToTokenize names it `MEGADOC_ID/INDEX`. */
function partIndex(id: string): number {
  return Number(id.slice(id.lastIndexOf('/') + 1));
}

function joined(parts: Uint32Array[], length: number): Sequence {
  const tokens = new Uint32Array(length);
  let at = 0;
  for (const part of parts) {
    tokens.set(part, at);
    at += part.length;
  }
  return { tokens };
}

/**
 * The parts of one stream as whole megadocs: a real megadoc is one part; a synthetic one starts at its part 0
 * (its parts come in order, partsToTokenize). `stats` counts parts as documents and entries as sequences.
 */
export function megadocEntries(stream: StreamName, stats: PackStats): Stage<TokenizedDoc, Sequence> {
  return (input) => {
    let parts: Uint32Array[] = [];
    let length = 0;
    return input.consume<Sequence>((error, doc, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      const release = () => {
        if (parts.length === 0) return;
        stats.sequences += 1;
        push(null, joined(parts, length));
        parts = [];
        length = 0;
      };
      if (_.isNil(doc)) {
        release();
        push(null, _.nil);
        return;
      }
      const part = doc as TokenizedDoc;
      if (stream === 'real' || partIndex(part.id) === 0) release();
      // The tokens may be a view into a buffer shared with other documents: copied to be kept.
      parts.push(part.tokens.slice());
      length += part.tokens.length;
      stats.documents += 1;
      stats.tokens += part.tokens.length;
      next();
    });
  };
}

export function megadocEntriesStep(stream: StreamName, stats: PackStats): Step<TokenizedDoc, Sequence> {
  return { name: 'entries', stage: megadocEntries(stream, stats) };
}

/** Entries of each stream and their tokens. */
export interface EntryTotals {
  sequences: number;
  tokens: number;
}

/**
 * The synthetic weight, in entries, that gives synthetic tokens a share `w` of the tokens (entries differ in
 * length, packed sequences do not): the synthetic entries that hold R x E x w / (1 - w) tokens at their mean length.
 */
export function entryWeight(
  weight: number | undefined,
  realEpochs: number,
  totals: Record<StreamName, EntryTotals>,
): number | undefined {
  const realSlots = totals.real.sequences * realEpochs;
  if (weight === undefined || realSlots === 0 || totals.synthetic.sequences === 0 || weight === 0)
    return weight;
  const syntheticTokens = (totals.real.tokens * realEpochs * weight) / (1 - weight);
  const entries = syntheticTokens / (totals.synthetic.tokens / totals.synthetic.sequences);
  const ratio = entries / realSlots;
  return ratio / (1 + ratio);
}

/**
 * The `--data-path` of a `--streams separate` Megatron run: each stream weighted by the tokens a trainer sees
 * from it (real x E, synthetic x its epochs), so the blend gives w and E; `trainTokens` is one pass of that mix.
 */
export function megatronDataPath(
  prefixes: Record<StreamName, string>,
  totals: Record<StreamName, EntryTotals>,
  epochs: Record<StreamName, number>,
): { dataPath: string; weights: Record<StreamName, number>; trainTokens: number } {
  const seen = {
    real: totals.real.tokens * epochs.real,
    synthetic: totals.synthetic.tokens * epochs.synthetic,
  };
  const trainTokens = seen.real + seen.synthetic;
  const share = (stream: StreamName) =>
    trainTokens > 0 ? Number((seen[stream] / trainTokens).toFixed(6)) : 0;
  const weights = { real: share('real'), synthetic: share('synthetic') };
  const dataPath = (['real', 'synthetic'] as const)
    .filter((stream) => totals[stream].sequences > 0)
    .map((stream) => `${weights[stream]} ${prefixes[stream]}`)
    .join(' ');
  return { dataPath, weights, trainTokens: Math.round(trainTokens) };
}

/** A `--data-path` whose prefixes are relative to `dir`, with `dir` in front of each prefix. */
export function dataPathUnder(dir: string, dataPath: string): string {
  const words = dataPath.split(' ');
  return words.map((word, at) => (at % 2 === 1 ? join(dir, word) : word)).join(' ');
}

/** The `--data-path` of the Megatron run in `out`, read from its mixture.json, with `out` in front of each prefix. */
export async function megatronDataPathOf(out: string, mixtureFile: string): Promise<string> {
  const mixture = JSON.parse(await readFile(join(out, mixtureFile), 'utf8')) as {
    megatron: { dataPath: string };
  };
  return dataPathUnder(out, mixture.megatron.dataPath);
}
