// `megadocs pack INPUTS... --out DIR`: documents -> tokens -> fixed-length sequences -> MDS (or jsonl.zst) shards.
// Parses and validates flags, draws progress from the pipeline's counters, prints the summary.
import { availableParallelism } from 'node:os';
import { type Command, Option } from 'commander';
import { HubPusher } from '../../lib/hub/push.js';
import { isHubUrl } from '../../lib/hub/url.js';
import {
  newPackProgress,
  type PackConfig,
  type PackSummary,
  rankOutput,
  runPack,
} from '../../lib/pipeline/pack.js';
import {
  addHubSelectionOptions,
  addPushOption,
  connectHub,
  hubSelectionFrom,
  pushTargetFrom,
} from '../hub-options.js';
import { runWithInterrupt } from '../interrupt.js';
import {
  addOutputOptions,
  addRecordOptions,
  integerAtLeast,
  parseByteSize,
  recordOptionsFrom,
} from '../options.js';
import { eta, formatBytes, formatCount, formatDuration, ProgressDisplay, rate } from '../progress.js';
import { addRankOptions, rankFrom } from '../rank-options.js';

export function register(program: Command): void {
  const command = program
    .command('pack')
    .description('tokenize documents and pack them into fixed-length sequences in MDS (or jsonl.zst) shards')
    .argument('<inputs...>', 'files, directories (recursive) or globs: .jsonl .json .gz .zst .parquet');
  addRecordOptions(command);
  addTokenizeOptions(command);
  addPackOptions(command);
  addHubSelectionOptions(command);
  addRankOptions(command);
  addPushOption(command);
  addOutputOptions(command).action(async (inputs: string[], options: Record<string, unknown>) => {
    const config = { ...packConfigFrom(inputs, options), rank: rankFrom(options, process.env) };
    const pushTarget = pushTargetFrom(options);
    const hub = inputs.some(isHubUrl) || pushTarget ? connectHub(process.env) : undefined;
    const pusher =
      hub && pushTarget
        ? new HubPusher({ client: hub.client, target: pushTarget, root: config.out })
        : undefined;
    const progress = newPackProgress();
    const display = new ProgressDisplay({ quiet: options.quiet as boolean });
    display.track(() => renderProgress(progress));
    try {
      const summary = await runWithInterrupt((signal) =>
        runPack(config, {
          progress,
          signal,
          pusher,
          hub: hub && { client: hub.client, selection: hubSelectionFrom(options) },
        }),
      );
      printSummary(display, summary, config, options.json as boolean);
    } finally {
      display.stop();
      await hub?.close();
    }
  });
}

/** --tokenizer, --workers, --eos/--no-eos, --bos. */
export function addTokenizeOptions(command: Command): Command {
  return command
    .option(
      '--tokenizer <spec>',
      'o200k_base, cl100k_base, r50k_base, or tiktoken:PATH (a tiktoken rank file, Llama 3 conventions)',
      'o200k_base',
    )
    .option(
      '--workers <n>',
      'tokenizer worker threads (0: main thread)',
      integerAtLeast(0),
      availableParallelism(),
    )
    .option('--no-eos', 'do not append the EOS token to each document')
    .option('--bos', 'prepend the BOS token to each document (tokenizers that have one)', false);
}

/** --seq-len, --tail, --format, --boundaries, --compression, --shard-size, --hashes. */
export function addPackOptions(command: Command): Command {
  return command
    .option('--seq-len <n>', 'tokens per packed sequence', integerAtLeast(1), 4096)
    .addOption(
      new Option('--tail <mode>', 'the last partial sequence: drop it, pad it with EOS, or keep it shorter')
        .choices(['drop', 'pad', 'keep'])
        .default('drop'),
    )
    .addOption(
      new Option('--format <format>', 'mds: token shards (MosaicML Streaming); jsonl: text shards')
        .choices(['mds', 'jsonl'])
        .default('mds'),
    )
    .option('--boundaries', 'add a `boundaries` column: segment start offsets inside each sequence', false)
    .option('--compression <spec>', 'zstd, zstd:N (level N), or none', 'zstd:3')
    .option(
      '--shard-size <bytes>',
      'raw bytes per shard before compression (e.g. 64MiB)',
      parseByteSize,
      1 << 26,
    )
    .option('--hashes <list>', 'comma-separated hash algorithms recorded per shard', 'sha1');
}

export function packConfigFrom(inputs: string[], options: Record<string, unknown>): PackConfig {
  return {
    inputs,
    out: options.out as string,
    overwrite: options.overwrite as boolean,
    record: recordOptionsFrom(options),
    tokenizer: options.tokenizer as string,
    workers: options.workers as number,
    eos: options.eos as boolean,
    bos: options.bos as boolean,
    seqLen: options.seqLen as number,
    tail: options.tail as PackConfig['tail'],
    format: options.format as PackConfig['format'],
    boundaries: options.boundaries as boolean,
    compression: options.compression as string,
    shardSize: options.shardSize as number,
    hashes: (options.hashes as string)
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  };
}

function renderProgress(progress: ReturnType<typeof newPackProgress>): string {
  const seconds = (Date.now() - progress.startedAt) / 1000;
  const { source, pack } = progress;
  const bytesPerSecond = rate(source.bytes, seconds);
  const parts = [
    'pack',
    `${formatCount(source.documents)} docs`,
    `${formatCount(pack.tokens)} tok (${formatCount(rate(pack.tokens, seconds))}/s)`,
    `${formatBytes(source.bytes)} read (${formatBytes(bytesPerSecond)}/s)`,
    `${progress.shards} shards`,
  ];
  if (progress.inputBytes)
    parts.push(`ETA ${formatDuration(eta(source.bytes, progress.inputBytes, bytesPerSecond))}`);
  return parts.join('  ');
}

function printSummary(
  display: ProgressDisplay,
  summary: PackSummary,
  config: PackConfig,
  json: boolean,
): void {
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (summary.sequences === 0 && summary.droppedTokens > 0) {
    display.log(
      `warning: all ${summary.droppedTokens} tokens were dropped: the input is shorter than one sequence of ${config.seqLen} tokens (use a smaller --seq-len, or --tail pad / keep)`,
    );
  }
  display.summary(`megadocs pack: wrote ${rankOutput(config.out, config.rank)}`, [
    ['files', String(summary.files)],
    [
      'documents',
      `${summary.documents}${summary.skippedRecords ? ` (${summary.skippedRecords} malformed skipped)` : ''}`,
    ],
    ['tokens', `${summary.tokens} (${formatCount(summary.tokensPerSecond)} tok/s)`],
    ['sequences', `${summary.sequences} x ${config.seqLen} tokens`],
    ['tail', `${summary.droppedTokens} tokens dropped, ${summary.paddedTokens} padded`],
    [
      'shards',
      `${summary.shards} (${formatBytes(summary.rawBytes)} raw, ${formatBytes(summary.storedBytes)} stored, ${summary.compressionRatio.toFixed(2)}x)`,
    ],
    ['wall time', formatDuration(summary.seconds)],
  ]);
}
