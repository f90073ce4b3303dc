// `megadocs pack` as a library call: source -> tokenize -> pack -> MDS sink (or source -> tokenize -> Megatron
// sink, or source -> jsonl.zst sink), users' transforms before tokenizing and after packing, on the executor.

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
import { megatronSink } from '../sinks/megatron.js';
import { megatronFiles } from '../sinks/megatron-format.js';
import { memmapSink } from '../sinks/memmap.js';
import { DocumentSpans, recordSpans } from '../sinks/memmap-spans.js';
import { completionFile } from '../sinks/output-index.js';
import { megatronTokenDtype, TOKEN_DTYPE_BYTES, type TokenDtype, tokenDtype } from '../sinks/token-dtype.js';
import { readDocs } from '../sources/read.js';
import type { SourceStats } from '../sources/types.js';
import { type DocumentTokens, documentTokens } from '../tokenize/document-tokens.js';
import {
  documentBosId,
  prepareTokenizer,
  type TokenizerFacts,
  tokenizerFacts,
} from '../tokenize/encoders.js';
import type { Doc, Sequence, TokenizedDoc } from '../types.js';
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
  /** BOS and EOS as written around each document (absent for text output). */
  documentTokens?: DocumentTokens;
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
  if (config.format !== 'jsonl') await prepareTokenizer(config.tokenizer, run.hubTokenizer);
  const encoder =
    config.format !== 'jsonl'
      ? await tokenizerFacts(config.tokenizer, config.eosToken, run.cacheDir)
      : undefined;
  // Checked here, before any work: --token-dtype must hold the vocabulary.
  const dtype = encoder && tokenDtype(encoder.vocabSize, config.tokenDtype);
  const summary = await executeJob({
    command: 'pack',
    config,
    inputs: config.inputs,
    out: config.out,
    overwrite: config.overwrite,
    rank: config.rank,
    identity: outputOptions(config),
    // Text output is not packed, nor is Megatron's (it packs at training time): they have no sequences.
    points: config.format === 'mds' ? PACK_POINTS : (['documents'] as const),
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
      const written = !encoder
        ? await jsonlSink({
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
          )
        : config.format === 'megatron'
          ? await writeMegatron(
              config,
              out,
              encoder.vocabSize,
              progress.pack,
              throughSteps<TokenizedDoc>(docs, [tokenizeStep(config, run.cacheDir)]),
            )
          : config.format === 'memmap'
            ? await writeMemmap(
                config,
                out,
                encoder,
                dtype!,
                (part) => {
                  onShard(part);
                  if (part.spans) run.pusher?.addShard(join(out, part.spans));
                },
                (spans) =>
                  throughSteps<Sequence>(docs, [
                    tokenizeStep(config, run.cacheDir),
                    { name: 'spans', stage: recordSpans(spans) },
                    packStep(config, encoder.eosId, progress.pack),
                    ...transformSteps(transforms, 'sequences'),
                  ]),
              )
            : await mdsSink({
                dir: out,
                dtype: dtype!,
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
              );
      const summary = {
        ...summarize(progress, written),
        ...(encoder && { documentTokens: documentTokens(encoder, config) }),
      };
      if (config.format === 'megatron') run.pusher?.addShard(join(out, megatronFiles(config.prefix).bin));
      await run.pusher?.finish(join(out, completionFile(config)));
      return summary;
    },
  });
  return summary!;
}

/** `--format megatron`: each tokenized document one entry of OUT/PREFIX.bin + .idx (counted as a sequence). */
async function writeMegatron(
  config: PackConfig,
  out: string,
  vocabSize: number,
  stats: PackStats,
  tokenized: Highland.Stream<TokenizedDoc>,
) {
  const written = await megatronSink({
    dir: out,
    prefix: config.prefix,
    dtype: megatronTokenDtype(vocabSize, config.tokenDtype),
    onEntry: (tokens) => {
      stats.documents += 1;
      stats.sequences += 1;
      stats.tokens += tokens;
    },
  })(tokenized);
  const bytes = written.binBytes + written.idxBytes;
  return { shards: 1, rawBytes: bytes, storedBytes: bytes };
}

/**
 * `--format memmap`: the packed sequences in part-NNNNN.npy files, each part's document spans beside it
 * (recorded from the tokenized documents: sequence k holds the stream's tokens [k x seqLen, (k + 1) x seqLen)).
 */
async function writeMemmap(
  config: PackConfig,
  out: string,
  facts: TokenizerFacts,
  dtype: TokenDtype,
  onPart: (part: { basename: string; spans: string | null }) => void,
  sequences: (spans: DocumentSpans) => Highland.Stream<Sequence>,
) {
  const spans = new DocumentSpans();
  const written = await memmapSink({
    dir: out,
    dtype,
    seqLen: config.seqLen,
    partSize: config.shardSize,
    tokenizer: config.tokenizer,
    eosId: facts.eosId,
    bosId: documentBosId(config.bos, facts) ?? null,
    spansOf: (position) => {
      // The sequences come in stream order: the documents before this one are done with.
      spans.forgetBefore(position * config.seqLen);
      return spans.within(position * config.seqLen, (position + 1) * config.seqLen);
    },
    onPart,
  })(sequences(spans));
  const bytes = written.tokens * TOKEN_DTYPE_BYTES[dtype];
  return { shards: written.files.length, rawBytes: bytes, storedBytes: bytes };
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
