// `megadocs pack` as a library call: source -> tokenize -> pack -> MDS sink (or source -> jsonl.zst sink),
// inside a run directory whose megadocs.json records the resolved options, versions and final stats.

import { join } from 'node:path';
import { rejectOnAbort } from '../abort.js';
import type { HubPusher } from '../hub/push.js';
import type { HubInputOptions } from '../hub/shard.js';
import { peakRssBytes } from '../memory.js';
import { rankDirName } from '../merge.js';
import { newPackStats, type PackStats, packStage, type TailMode, validatePackOptions } from '../pack.js';
import { planShards } from '../plan.js';
import type { Rank } from '../ranks.js';
import { RunDir } from '../rundir.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { mdsSink, parseCompression } from '../sinks/mds.js';
import { expandInputs, inputIdentity, knownInputBytes } from '../sources/inputs.js';
import { readDocs } from '../sources/read.js';
import type { RecordOptions, SourceStats } from '../sources/types.js';
import { tokenizerFacts } from '../tokenize/encoders.js';
import { tokenizeStage } from '../tokenize/stage.js';

export type OutputFormat = 'mds' | 'jsonl';

export interface PackConfig {
  inputs: string[];
  out: string;
  overwrite: boolean;
  record: RecordOptions;
  tokenizer: string;
  workers: number;
  eos: boolean;
  bos: boolean;
  seqLen: number;
  tail: TailMode;
  format: OutputFormat;
  boundaries: boolean;
  compression: string;
  shardSize: number;
  hashes: string[];
  /** This worker's share of the inputs; with worldSize > 1 the output goes to OUT/rank-NNNNN/. */
  rank?: Rank;
}

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

/** The options that decide the output bytes (worker count and verbosity do not). */
function outputIdentity(config: PackConfig): Record<string, unknown> {
  const { workers: _workers, overwrite: _overwrite, out: _out, ...identity } = config;
  return identity;
}

export interface PackRunOptions {
  progress?: PackProgress;
  /** Aborting stops the run and marks it interrupted in megadocs.json; no index.json is written. */
  signal?: AbortSignal;
  /** How `hf://` inputs are reached (client with endpoint and token, config/split selection). */
  hub?: HubInputOptions;
  /** Uploads each finished shard, then the index, to a Hub dataset while the run goes on. */
  pusher?: HubPusher;
}

/** Where this worker writes: OUT itself, or OUT/rank-NNNNN/ when the work is split among ranks. */
export function rankOutput(out: string, rank: Rank | undefined): string {
  return rank && rank.worldSize > 1 ? join(out, rankDirName(rank.rank)) : out;
}

export async function runPack(config: PackConfig, run: PackRunOptions = {}): Promise<PackSummary> {
  const progress = run.progress ?? newPackProgress();
  parseCompression(config.compression);
  const encoder = config.format === 'mds' ? await tokenizerFacts(config.tokenizer) : undefined;
  if (encoder)
    validatePackOptions({
      seqLen: config.seqLen,
      tail: config.tail,
      boundaries: config.boundaries,
      padId: encoder.eosId,
    });
  const allShards = await expandInputs(config.inputs, { hub: run.hub });
  const shards = config.rank && config.rank.worldSize > 1 ? planShards(allShards, config.rank) : allShards;
  const out = rankOutput(config.out, config.rank);
  progress.inputBytes = knownInputBytes(shards);
  const runDir = await RunDir.open({
    dir: out,
    command: 'pack',
    options: { ...config },
    identity: { ...outputIdentity(config), inputFiles: inputIdentity(shards) },
    overwrite: config.overwrite,
  });
  try {
    const docs = readDocs(shards, { ...config.record, stats: progress.source });
    const onShard = (shard: { basename: string }) => {
      progress.shards += 1;
      run.pusher?.addShard(join(out, shard.basename));
    };
    const work = encoder
      ? docs
          .through(
            tokenizeStage({
              tokenizer: config.tokenizer,
              workers: config.workers,
              eos: config.eos,
              bos: config.bos,
            }),
          )
          .through(
            packStage({
              seqLen: config.seqLen,
              tail: config.tail,
              boundaries: config.boundaries,
              padId: encoder.eosId,
              stats: progress.pack,
            }),
          )
          .through((sequences) =>
            mdsSink({
              dir: out,
              dtype: encoder.vocabSize < 65_536 ? 'uint16' : 'uint32',
              boundaries: config.boundaries,
              compression: config.compression,
              shardSize: config.shardSize,
              hashes: config.hashes,
              onShard,
            })(sequences),
          )
      : jsonlSink({ dir: out, compression: config.compression, shardSize: config.shardSize, onShard })(
          docs.map((doc) => {
            progress.pack.documents += 1;
            return { id: doc.id, text: doc.text };
          }),
        );
    const written = await Promise.race([
      work,
      rejectOnAbort(run.signal, 'Run the same command again to start over'),
    ]);
    const summary = summarize(progress, written);
    await runDir.complete({ ...summary });
    await run.pusher?.finish(join(out, 'index.json'));
    return summary;
  } catch (error) {
    await runDir.stop(run.signal?.aborted ? 'interrupted' : 'failed', error, {
      ...progress.source,
      ...progress.pack,
    });
    throw error;
  }
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
