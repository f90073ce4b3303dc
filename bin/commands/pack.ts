// `megadocs pack INPUTS... --out DIR`: documents -> tokens -> fixed-length sequences -> MDS (or jsonl.zst) shards.
// Collects the flags into a config for parsePackConfig, draws progress from the pipeline's counters, prints the summary.
import { availableParallelism } from 'node:os';
import { type Command, Option } from 'commander';
import {
  OUTPUT_FORMATS,
  PACK_CONFIG_KEYS,
  type PackConfig,
  parsePackConfig,
  RECORD_KEYS,
} from '../../lib/config.js';
import { HubPusher } from '../../lib/hub/push.js';
import { isHubUrl } from '../../lib/hub/url.js';
import { TAIL_MODES } from '../../lib/pack.js';
import { rankOutput } from '../../lib/pipeline/executor.js';
import { newPackProgress, PACK_POINTS, type PackSummary, runPack } from '../../lib/pipeline/pack.js';
import { TOKEN_DTYPES } from '../../lib/sinks/token-dtype.js';
import { type DocumentTokens, describeDocumentTokens } from '../../lib/tokenize/document-tokens.js';
import { reportAlreadyComplete } from '../already-complete.js';
import { commandFor } from '../command-table.js';
import { runtimeOptionsFromEnv } from '../environment.js';
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
  choiceOption,
  flagsFor,
  numeric,
  parseByteSize,
} from '../options.js';
import {
  compressorRows,
  eta,
  formatBytes,
  formatCount,
  formatDuration,
  ProgressDisplay,
  rate,
  warnIfNoDocuments,
} from '../progress.js';
import { addRankOptions, rankFrom } from '../rank-options.js';
import { addReportOption, reportRows } from '../report-option.js';
import { addTransformOption, transformModulesFrom } from '../transform-options.js';

export function register(program: Command): void {
  const command = commandFor(program, 'pack');
  addRecordOptions(command);
  addTokenizeOptions(command);
  addPackOptions(command);
  addHubSelectionOptions(command);
  addRankOptions(command);
  addPushOption(command);
  addTransformOption(command, PACK_POINTS);
  addReportOption(command);
  addOutputOptions(command).action(async (inputs: string[], options: Record<string, unknown>) => {
    const config = parsePackConfig(
      {
        ...flagsFor(options, PACK_CONFIG_KEYS),
        inputs,
        record: flagsFor(options, RECORD_KEYS),
        rank: rankFrom(options, process.env),
      },
      'the command line',
    );
    const transformModules = await transformModulesFrom(options);
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
        runPack(capWorkers(config, display), {
          ...runtimeOptionsFromEnv(process.env),
          progress,
          signal,
          onWarning: (message) => display.warn(message),
          pusher,
          transformModules,
          hub: hub && { client: hub.client, selection: hubSelectionFrom(options) },
        }),
      );
      const out = rankOutput(config.out, config.rank);
      if (reportAlreadyComplete(display, 'pack', out, summary, options.json as boolean)) return;
      warnIfNoDocuments(display, progress.source);
      printSummary(display, summary, config, options.json as boolean, await reportRows(out, options));
    } finally {
      display.stop();
      await hub?.close();
    }
  });
}

/**
 * The config with --workers capped at the cores here (os.availableParallelism()), with a warning: more
 * tokenizer threads than cores only take memory (~20 MB each) and time to start.
 */
export function capWorkers<C extends { workers: number }>(config: C, display: ProgressDisplay): C {
  const cores = availableParallelism();
  if (config.workers <= cores) return config;
  display.warn(
    `--workers ${config.workers} is more than the ${cores} cores here: using ${cores} tokenizer threads`,
  );
  return { ...config, workers: cores };
}

/** Warns (also under --quiet) when `what` packed into no sequence at all: all of it fell into the dropped tail. */
export function warnIfAllDropped(
  display: ProgressDisplay,
  what: string,
  packed: { sequences: number; droppedTokens: number },
  seqLen: number,
): void {
  if (packed.sequences > 0 || packed.droppedTokens === 0) return;
  display.warn(
    `all ${packed.droppedTokens} tokens were dropped: ${what} is shorter than one sequence of ${seqLen} tokens (use a smaller --seq-len, or --tail pad / keep)`,
  );
}

/** The BOS/EOS row of a pack or run summary (none for text output, or a summary recorded before it was kept). */
export function documentTokensRows(summary: object): Array<[string, string]> {
  const { documentTokens } = summary as { documentTokens?: DocumentTokens };
  return documentTokens ? [['special tokens', describeDocumentTokens(documentTokens)]] : [];
}

/** --tokenizer, --workers, --eos/--no-eos, --bos/--no-bos. */
export function addTokenizeOptions(command: Command): Command {
  return command
    .option(
      '--tokenizer <spec>',
      "o200k_base, cl100k_base, r50k_base, tiktoken:PATH (a tiktoken rank file, Llama 3 conventions), hf:ORG/REPO[@REV] (a Hub model's tokenizer.json), or PATH of a Hugging Face tokenizer.json (or of its directory)",
      'o200k_base',
    )
    .option('--workers <n>', 'tokenizer worker threads (0: main thread)', numeric, availableParallelism())
    .option('--no-eos', 'do not append the EOS token to each document')
    .option('--bos', 'prepend the BOS token to each document (default: as the model does)')
    .option('--no-bos', 'do not prepend the BOS token, even where the model does')
    .option('--eos-token <string>', "the EOS token instead of the model's (one of its special tokens)");
}

/** --seq-len, --tail, --format, --boundaries, --compression, --shard-size, --hashes. */
export function addPackOptions(command: Command): Command {
  return command
    .option('--seq-len <n>', 'tokens per packed sequence (at most 2^24)', numeric, 4096)
    .addOption(
      choiceOption(
        '--tail <mode>',
        'the last partial sequence: drop it, pad it with EOS, or keep it shorter',
        TAIL_MODES,
        'drop',
      ),
    )
    .addOption(
      choiceOption(
        '--format <format>',
        'mds: token shards (MosaicML Streaming); megatron: PREFIX.bin + PREFIX.idx, one entry per document (Megatron-LM, NeMo, GPT-NeoX); memmap: part-NNNNN.npy flat token arrays (OLMo-core, nanoGPT); jsonl: text shards',
        OUTPUT_FORMATS,
        'mds',
      ),
    )
    .option(
      '--prefix <name>',
      'with --format megatron: the files are OUT/PREFIX.bin and OUT/PREFIX.idx',
      'megadocs',
    )
    .option('--boundaries', 'add a `boundaries` column: segment start offsets inside each sequence', false)
    .option('--compression <spec>', 'zstd, zstd:N (level N), or none', 'zstd:3')
    .option(
      '--shard-size <bytes>',
      'raw bytes per shard before compression (e.g. 64MiB)',
      parseByteSize,
      1 << 26,
    )
    .option('--hashes <list>', 'comma-separated hash algorithms recorded per shard', 'sha1')
    .addOption(
      new Option(
        '--token-dtype <dtype>',
        "the token ids' dtype (default: uint16 when the vocabulary fits, else uint32; Megatron int32); int32 writes MDS ndarray:int32, as llm-foundry's converter does (PyTorch before 2.3 reads no uint16/uint32 arrays)",
      ).choices(TOKEN_DTYPES),
    );
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
  reportRow: Array<[string, string]> = [],
): void {
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  warnIfAllDropped(display, 'the input', summary, config.seqLen);
  display.summary(`megadocs pack: wrote ${rankOutput(config.out, config.rank)}`, [
    ['files', String(summary.files)],
    [
      'documents',
      `${summary.documents}${summary.skippedRecords ? ` (${summary.skippedRecords} malformed skipped)` : ''}`,
    ],
    ['tokens', `${summary.tokens} (${formatCount(summary.tokensPerSecond)} tok/s)`],
    config.format === 'megatron'
      ? ['entries', `${summary.sequences} whole documents`]
      : ['sequences', `${summary.sequences} x ${config.seqLen} tokens`],
    ['tail', `${summary.droppedTokens} tokens dropped, ${summary.paddedTokens} padded`],
    ...documentTokensRows(summary),
    [
      'shards',
      `${summary.shards} (${formatBytes(summary.rawBytes)} raw, ${formatBytes(summary.storedBytes)} stored, ${summary.compressionRatio.toFixed(2)}x)`,
    ],
    // Megatron pairs and memmap parts are not compressed: the trainer memory-maps them.
    ...(config.format === 'megatron' || config.format === 'memmap'
      ? []
      : compressorRows(config.compression, runtimeOptionsFromEnv(process.env).zstdEngine)),
    ['wall time', formatDuration(summary.seconds)],
    ...reportRow,
  ]);
}
