// `megadocs pack` as a library call: source -> tokenize -> pack -> MDS sink (or source -> jsonl.zst sink),
// users' transforms before tokenizing and after packing, on the executor (run directory, resume, stats).

import { join } from 'node:path';
import {
  outputOptions,
  type PackConfig,
  type PackConfigInput,
  parsePackConfig,
  type RuntimeOptions,
} from '../config.js';
import type { HubPusher } from '../hub/push.js';
import type { HubInputOptions } from '../hub/shard.js';
import { peakRssBytes } from '../memory.js';
import { newPackStats, type PackStats } from '../pack.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { mdsSink } from '../sinks/mds.js';
import { readDocs } from '../sources/read.js';
import type { SourceStats } from '../sources/types.js';
import { tokenizerFacts } from '../tokenize/encoders.js';
import type { Doc, Sequence } from '../types.js';
import { executeJob } from './executor.js';

import { throughSteps } from './steps.js';
import { packStep, tokenizeStep } from './token-steps.js';
import { type TransformModule, type Transforms, transformSteps } from './transforms.js';

export type { PackConfig, PackConfigInput } from '../config.js';
export type OutputFormat = PackConfig['format'];

/** Live counters, updated as the run goes (the CLI draws progress from them). */
export interface PackProgress {
  source: SourceStats;
  pack: PackStats;
  shards: number;
  /** Total input bytes when every input's size is known up front (for the ETA). */
  inputBytes?: number;
  startedAt: number;
}

export interface PackSummary {
  files: number;
  documents: number;
  skippedRecords: number;
  inputBytes: number;
  tokens: number;
  sequences: number;
  droppedTokens: number;
  paddedTokens: number;
  shards: number;
  rawBytes: number;
  storedBytes: number;
  compressionRatio: number;
  seconds: number;
  tokensPerSecond: number;
  /** Peak resident memory of the process (worker threads included), for the memory benchmarks. */
  peakRssBytes: number;
}

export function newPackProgress(): PackProgress {
  return {
    source: { files: 0, documents: 0, bytes: 0, skipped: 0 },
    pack: newPackStats(),
    shards: 0,
    startedAt: Date.now(),
  };
}

/** The insertion points of `megadocs pack`: source documents before tokenizing, sequences before the sink. */
export const PACK_POINTS = ['documents', 'sequences'] as const;

export interface PackRunOptions extends RuntimeOptions {
  progress?: PackProgress;
  /** Aborting stops the run and marks it interrupted in megadocs.json; no index.json is written. */
  signal?: AbortSignal;
  /** How `hf://` inputs are reached (client with endpoint and token, config/split selection). */
  hub?: HubInputOptions;
  /** Uploads each finished shard, then the index, to a Hub dataset while the run goes on. */
  pusher?: HubPusher;
  /** Users' stages at the insertion points (part of the run identity). */
  transforms?: Transforms<PackConfig>;
  /** `--transform` modules, applied after `transforms` at each point. */
  transformModules?: readonly TransformModule[];
  /** Warnings such as a dead process's lock on the output directory taken over. */
  onWarning?: (message: string) => void;
}

/** Checks `input` first (parsePackConfig: every field, defaults filled in), so nothing starts on a bad config. */
export async function runPack(input: PackConfigInput, run: PackRunOptions = {}): Promise<PackSummary> {
  const config = parsePackConfig(input, 'the runPack config');
  const progress = run.progress ?? newPackProgress();
  const encoder = config.format === 'mds' ? await tokenizerFacts(config.tokenizer) : undefined;
  const summary = await executeJob({
    command: 'pack',
    config,
    inputs: config.inputs,
    out: config.out,
    overwrite: config.overwrite,
    rank: config.rank,
    identity: outputOptions(config),
    // Text output is not packed: it has no sequences.
    points: encoder ? PACK_POINTS : (['documents'] as const),
    transforms: run.transforms,
    transformModules: run.transformModules,
    hub: run.hub,
    zstdEngine: run.zstdEngine,
    signal: run.signal,
    onWarning: run.onWarning,
    abortHint: 'Run the same command again to start over',
    onInputBytes: (bytes) => {
      progress.inputBytes = bytes;
    },
    stopStats: () => ({ ...progress.source, ...progress.pack }),
    work: async ({ shards, out, transforms }) => {
      const docs = throughSteps<Doc>(
        readDocs(shards, { ...config.record, stats: progress.source }),
        transformSteps(transforms, 'documents'),
      );
      const onShard = (shard: { basename: string }) => {
        progress.shards += 1;
        run.pusher?.addShard(join(out, shard.basename));
      };
      const written = encoder
        ? await mdsSink({
            dir: out,
            dtype: encoder.vocabSize < 65_536 ? 'uint16' : 'uint32',
            boundaries: config.boundaries,
            compression: config.compression,
            shardSize: config.shardSize,
            hashes: config.hashes,
            zstdEngine: run.zstdEngine,
            onShard,
          })(
            throughSteps<Sequence>(docs, [
              tokenizeStep(config, run.cacheDir),
              packStep(config, encoder.eosId, progress.pack),
              ...transformSteps(transforms, 'sequences'),
            ]),
          )
        : await jsonlSink({
            dir: out,
            compression: config.compression,
            zstdEngine: run.zstdEngine,
            shardSize: config.shardSize,
            onShard,
          })(
            docs.map((doc) => {
              progress.pack.documents += 1;
              return { id: doc.id, text: doc.text };
            }),
          );
      const summary = summarize(progress, written);
      await run.pusher?.finish(join(out, 'index.json'));
      return summary;
    },
  });
  return summary!;
}

function summarize(
  progress: PackProgress,
  written: { shards: number; rawBytes: number; storedBytes: number },
): PackSummary {
  const seconds = (Date.now() - progress.startedAt) / 1000;
  const { source, pack } = progress;
  return {
    files: source.files,
    documents: source.documents,
    skippedRecords: source.skipped,
    inputBytes: source.bytes,
    tokens: pack.tokens,
    sequences: pack.sequences,
    droppedTokens: pack.droppedTokens,
    paddedTokens: pack.paddedTokens,
    shards: written.shards,
    rawBytes: written.rawBytes,
    storedBytes: written.storedBytes,
    compressionRatio: written.storedBytes > 0 ? written.rawBytes / written.storedBytes : 0,
    seconds,
    tokensPerSecond: seconds > 0 ? pack.tokens / seconds : 0,
    peakRssBytes: peakRssBytes(),
  };
}
