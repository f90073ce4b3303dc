// The counters of a `megadocs run` (one object per stage, redrawn by the CLI) and the stats recorded in
// megadocs.json: documents in/out, generations, drops by cause, tokens per stream, sequences, shards, times.

import type { AssembleStats } from '../assemble/index.js';
import { newAssembleStats } from '../assemble/index.js';
import type { RunConfig } from '../config.js';
import { createGenerateStats, type GenerateStats, statsSnapshot } from '../generate/stats.js';
import { peakRssBytes } from '../memory.js';
import { newPackStats, type PackStats } from '../pack.js';
import type { SourceStats } from '../sources/types.js';
import type { StreamName } from '../types.js';

/** Live counters of every stage, updated as the run goes (the CLI draws its progress lines from them). */
export interface RunProgress {
  startedAt: number;
  source: SourceStats;
  /** Total input bytes when every input's size is known up front. */
  inputBytes?: number;
  generate: GenerateStats;
  assemble: AssembleStats;
  /** Tokenized parts, tokens and packed sequences of each stream. */
  pack: Record<StreamName, PackStats>;
  /** The second phase: sequences mixed, shuffled and written. */
  write: {
    started: boolean;
    planned: number;
    written: number;
    tokens: Record<StreamName, number>;
    shards: number;
  };
}

export function newRunProgress(now = Date.now()): RunProgress {
  return {
    startedAt: now,
    source: { files: 0, documents: 0, bytes: 0, skipped: 0 },
    generate: createGenerateStats(now),
    assemble: newAssembleStats(),
    pack: { real: newPackStats(), synthetic: newPackStats() },
    write: { started: false, planned: 0, written: 0, tokens: { real: 0, synthetic: 0 }, shards: 0 },
  };
}

/** What the MDS sink reports for one dataset. */
export interface WrittenDataset {
  shards: number;
  samples: number;
  tokens: number;
  rawBytes: number;
  storedBytes: number;
}

/** How the second phase mixed the streams (recorded under `mix` in megadocs.json). */
export type MixReport = {
  streams: 'mixed' | 'separate';
  realEpochs: number;
  syntheticWeight: number;
  syntheticEpochs: number;
  /** Output slots of each stream (for `separate`: what one trainer epoch takes, per mixture.json). */
  sequences: { real: number; synthetic: number; total: number };
  realTokensSeen: number;
  syntheticTokensSeen: number;
  shuffled: boolean;
  shuffleSeed: number;
};

/** Written datasets by name, and the mix figures of the second phase. */
export interface WrittenOutput {
  datasets: Record<string, WrittenDataset>;
  mix: MixReport;
}

/** The final stats of a run (megadocs.json `stats`, and `--json`). */
export type RunSummary = ReturnType<typeof summarize>;

/** The final stats (megadocs.json, `--json`). */
export function summarize(
  progress: RunProgress,
  config: RunConfig,
  written: WrittenOutput,
  phases: { streamSeconds: number; writeSeconds: number },
) {
  const { source, pack, assemble } = progress;
  const wallSeconds = (Date.now() - progress.startedAt) / 1000;
  const datasets = Object.values(written.datasets);
  const sum = (pick: (dataset: WrittenDataset) => number) =>
    datasets.reduce((total, dataset) => total + pick(dataset), 0);
  const packed = (stream: StreamName) => ({
    parts: pack[stream].documents,
    tokens: pack[stream].tokens,
    sequences: pack[stream].sequences,
    droppedTokens: pack[stream].droppedTokens,
    paddedTokens: pack[stream].paddedTokens,
  });
  return {
    source: {
      files: source.files,
      documents: source.documents,
      bytes: source.bytes,
      malformedRecords: source.skipped,
    },
    generate: statsSnapshot(progress.generate),
    assemble: {
      mode: config.assemble,
      documentsIn: assemble.documents,
      generations: assemble.generations,
      documentsKept: assemble.kept,
      documentsOut: assemble.megadocs,
      dropped: assemble.dropped,
    },
    tokens: {
      real: pack.real.tokens,
      synthetic: pack.synthetic.tokens,
      expansionFactor: pack.real.tokens > 0 ? pack.synthetic.tokens / pack.real.tokens : 0,
    },
    pack: { seqLen: config.seqLen, real: packed('real'), synthetic: packed('synthetic') },
    mix: written.mix,
    output: {
      datasets: written.datasets,
      shards: sum((dataset) => dataset.shards),
      sequences: sum((dataset) => dataset.samples),
      tokens: sum((dataset) => dataset.tokens),
      rawBytes: sum((dataset) => dataset.rawBytes),
      storedBytes: sum((dataset) => dataset.storedBytes),
    },
    wallSeconds,
    peakRssBytes: peakRssBytes(),
    phaseSeconds: { streaming: phases.streamSeconds, writing: phases.writeSeconds },
  };
}
