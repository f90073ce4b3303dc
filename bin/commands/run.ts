// `megadocs run INPUTS... --out OUT` or `megadocs run --config FILE.json`: documents to trainer-ready shards
// in one process. Declares the flags, merges them over the config file, draws one line per stage, prints the summary.
import { Command, InvalidArgumentError, Option } from 'commander';
import { ASSEMBLE_MODES } from '../../lib/assemble/index.js';
import { parseRunConfig, RUN_OUTPUT_FORMATS, type RunConfig, readRunConfigFile } from '../../lib/config.js';
import { totalTokens } from '../../lib/generate/stats.js';
import { HubPusher } from '../../lib/hub/push.js';
import { isHubUrl } from '../../lib/hub/url.js';
import { rankOutput } from '../../lib/pipeline/executor.js';
import {
  newRunProgress,
  RUN_POINTS,
  type RunProgress,
  type RunSummary,
  runMegadocs,
} from '../../lib/pipeline/run.js';
import { megatronDataPathOf } from '../../lib/pipeline/run-megatron.js';
import { MIXTURE_FILE } from '../../lib/pipeline/run-write.js';
import { resolveRank } from '../../lib/ranks.js';
import { STREAM_NAMES } from '../../lib/types.js';
import { reportAlreadyComplete } from '../already-complete.js';
import { commandFor } from '../command-table.js';
import { runtimeOptionsFromEnv } from '../environment.js';
import { addHubSelectionOptions, addPushOption, connectHub, pushTargetFrom } from '../hub-options.js';
import { runWithInterrupt } from '../interrupt.js';
import { addLocalLlmOptions, localRunOptions } from '../local-options.js';
import { addOutputOptions, addRecordOptions, integerAtLeast } from '../options.js';
import {
  compressorRows,
  concurrencyRows,
  estimatedDocuments,
  eta,
  formatBytes,
  formatCount,
  formatDuration,
  ProgressDisplay,
  rate,
  serverParts,
  warnIfNoDocuments,
} from '../progress.js';
import { addRankOptions } from '../rank-options.js';
import { addReportOption, reportRows } from '../report-option.js';
import { addTransformOption, transformModulesFrom } from '../transform-options.js';
import {
  addLlmOptions,
  addRecipeOptions,
  apiKeyFrom,
  budgetRows,
  failedDocuments,
  latencyRange,
  longDocsRow,
  servedModelRow,
} from './generate.js';
import {
  addPackOptions,
  addTokenizeOptions,
  capWorkers,
  documentTokensRows,
  warnIfAllDropped,
} from './pack.js';

/** Flags that change what is shown or where copies go, or that load code (--transform): kept out of the config. */
const DISPLAY_FLAGS = new Set(['config', 'quiet', 'json', 'pushTo', 'transform', 'report']);

const SHUFFLE_HELP = `
Shuffling: documents are packed in storage order (so a megadoc stays contiguous within its sequences),
each stream on its own; the packed sequences wait on disk in OUT/spill/ and are then written in the order
of a seeded permutation of all output slots (a keyed Feistel permutation, computed per position: a full,
global shuffle in constant memory; disk use = the packed tokens once more, until the run ends).
--no-shuffle writes each stream in storage order, the real and synthetic streams interleaved evenly.
With --assemble none, the separate documents are also scattered by a seeded window of --shuffle-window
documents before packing, so one document's generations land in different sequences.

Mixing: real = the source documents, seen --real-epochs times; synthetic = the assembled documents
(with the original inside, as in the megadocs paper). --synthetic-weight w adds synthetic sequences until
they are w of the output (R x E / (1 - w) sequences in all); without it each is written once.

--config FILE.json: one JSON object whose keys are these long flags in camelCase ("seqLen", "llm",
"syntheticWeight", ...) plus "inputs"; flags given on the command line override the file.`;

/**
 * Run's --format: the token formats only, declared before pack's flags so that pack's (which offers jsonl) is
 * skipped; no commander choices, so the config's refusal of jsonl points to `megadocs generate`.
 */
function addRunFormatOption(command: Command): void {
  command.addOption(
    new Option(
      '--format <format>',
      `${RUN_OUTPUT_FORMATS.join(', ')}: MDS token shards (MosaicML Streaming), each megadoc one entry of PREFIX.bin + PREFIX.idx (Megatron-LM), or part-NNNNN.npy token arrays (OLMo-core, nanoGPT)`,
    ).default('mds'),
  );
}

/** Adds the options a shared declaration makes, skipping flags already declared (e.g. --tokenizer). */
function addOptionsOnce(command: Command, declare: (scratch: Command) => Command): void {
  for (const option of declare(new Command()).options) {
    if (command.options.some((existing) => existing.long === option.long)) continue;
    // Required values may come from --config instead: the config schema checks that they are there.
    option.mandatory = false;
    command.addOption(option);
  }
}

function addAssembleOptions(command: Command): void {
  command
    .addOption(
      new Option(
        '--assemble <mode>',
        "stitch: a document's generations and the original as one megadoc; stretch: rationales " +
          'inside the document; none: every generation its own document (the rephrasing baseline)',
      )
        .choices(ASSEMBLE_MODES)
        .default('stitch'),
    )
    .addOption(
      new Option('--original <place>', 'where the original goes in a stitched megadoc (none: left out)')
        .choices(['back', 'front', 'none'])
        .default('back'),
    )
    .addOption(
      new Option(
        '--separator <kind>',
        'eos: each part its own document ending with EOS; text: parts joined by --join',
      )
        .choices(['eos', 'text'])
        .default('eos'),
    )
    .option('--join <string>', 'the string between parts with --separator text', '\n\n')
    .option('--thought-open <string>', 'opens each rationale with --assemble stretch', '<think>')
    .option('--thought-close <string>', 'closes each rationale with --assemble stretch', '</think>')
    .option(
      '--min-generations <K>',
      'a document with fewer surviving generations makes no synthetic document (counted)',
      integerAtLeast(0),
      1,
    );
}

function weight(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed >= 1) {
    throw new InvalidArgumentError(`expected a number from 0 up to (not including) 1, got "${value}"`);
  }
  return parsed;
}

function addMixOptions(command: Command): void {
  command
    .addOption(
      new Option(
        '--streams <mode>',
        'mixed: one materialised dataset; separate: OUT/real/, OUT/synthetic/ and OUT/mixture.json',
      )
        .choices(['mixed', 'separate'])
        .default('mixed'),
    )
    .option('--synthetic-weight <w>', 'share of the output that is synthetic, in [0, 1)', weight)
    .option(
      '--real-epochs <E>',
      'times the real documents are seen (0: synthetic only)',
      integerAtLeast(0),
      1,
    )
    .option('--no-shuffle', 'keep storage order (no sequence shuffle)')
    .option(
      '--shuffle-seed <n>',
      'seed of the sequence shuffle and of the --assemble none scatter',
      integerAtLeast(0),
      0,
    )
    .option(
      '--shuffle-window <docs>',
      'documents held to scatter generations with --assemble none',
      integerAtLeast(1),
      8192,
    );
}

/** Every option of `run` (also taken by `megadocs plan`, so a run's command line can be planned as it is). */
export function addRunOptions(command: Command): Command {
  command.option(
    '--config <file>',
    'a JSON file of options (keys: the long flags in camelCase); flags override it',
  );
  addRecordOptions(command);
  addOptionsOnce(command, addTokenizeOptions);
  addOptionsOnce(command, addLlmOptions);
  addOptionsOnce(command, addRecipeOptions);
  addOptionsOnce(command, addLocalLlmOptions);
  addOptionsOnce(command, addHubSelectionOptions);
  addAssembleOptions(command);
  addMixOptions(command);
  addRunFormatOption(command);
  addOptionsOnce(command, addPackOptions);
  addOptionsOnce(command, addRankOptions);
  addPushOption(command);
  addTransformOption(command, RUN_POINTS);
  addOptionsOnce(command, addOutputOptions);
  addReportOption(command);
  return command.addHelpText('after', SHUFFLE_HELP);
}

export function register(program: Command): void {
  const command = addRunOptions(commandFor(program, 'run'));
  command.action(async (inputs: string[], options: Record<string, unknown>) => {
    const given = await configFrom(command, inputs, options.config as string | undefined);
    // The worker's rank from the flags or the file, else from Slurm / Kubernetes: it decides the output.
    const { rank, worldSize } = resolveRank({ rank: given.rank, worldSize: given.worldSize }, process.env);
    const config = { ...given, rank, worldSize };
    const transformModules = await transformModulesFrom(options);
    const apiKey = apiKeyFrom(config.apiKeyEnv, config.apiKeyEnv !== 'OPENAI_API_KEY');
    const pushTarget = pushTargetFrom(options);
    const hub = config.inputs.some(isHubUrl) || pushTarget ? connectHub(process.env) : undefined;
    const pusher =
      hub && pushTarget
        ? new HubPusher({ client: hub.client, target: pushTarget, root: config.out })
        : undefined;
    const progress = newRunProgress();
    const display = new ProgressDisplay({ quiet: options.quiet as boolean });
    display.track(...STAGE_LINES.map((render) => () => render(progress)));
    try {
      const summary = await runWithInterrupt((signal) =>
        runMegadocs(capWorkers(config, display), {
          ...runtimeOptionsFromEnv(process.env),
          apiKey,
          progress,
          signal,
          onWarning: (message) => display.warn(message),
          local: localRunOptions(display, process.env),
          hub: hub && { client: hub.client },
          pusher,
          transformModules,
        }),
      );
      const out = rankOutput(config.out, { rank, worldSize });
      if (reportAlreadyComplete(display, 'run', out, summary, options.json as boolean)) return;
      if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      warnIfNoDocuments(display, progress.source);
      for (const stream of STREAM_NAMES)
        warnIfAllDropped(display, `the ${stream} stream`, summary.pack[stream], config.seqLen);
      const rows = summaryRows(summary, progress, config);
      if (config.format === 'megatron' && config.streams === 'separate')
        rows.push(['--data-path', await megatronDataPathOf(out, MIXTURE_FILE)]);
      rows.push(...(await reportRows(out, options)));
      display.summary(`megadocs run: wrote ${out}`, rows);
    } finally {
      display.stop();
      await hub?.close();
    }
  });
}

/** The config file's values, overridden by the flags given on the command line (not by flag defaults). */
export async function configFrom(
  command: Command,
  inputs: string[],
  file: string | undefined,
  /** Options of the command that are not run's (`megadocs plan`'s own), and keys a run needs that it may lack. */
  extra: { leaveOut?: readonly string[]; defaults?: Record<string, unknown> } = {},
): Promise<RunConfig> {
  const fromFile = file ? await readRunConfigFile(file) : {};
  const given = Object.entries(command.opts()).filter(
    ([key]) =>
      !DISPLAY_FLAGS.has(key) &&
      !extra.leaveOut?.includes(key) &&
      command.getOptionValueSource(key) === 'cli',
  );
  const raw = {
    ...extra.defaults,
    ...fromFile,
    ...Object.fromEntries(given),
    ...(inputs.length > 0 ? { inputs } : {}),
  };
  return parseRunConfig(raw, file ?? 'the command line');
}

function byCause(counts: Record<string, number>): string {
  const entries = Object.entries(counts).filter(([, count]) => count > 0);
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return '0';
  return `${total} (${entries.map(([cause, count]) => `${cause} ${count}`).join(', ')})`;
}

function elapsed(progress: RunProgress): number {
  return (Date.now() - progress.startedAt) / 1000;
}

/** One line per stage, drawn live. The source reads ahead of the LLM calls: the run's ETA is generation's. */
export const STAGE_LINES: Array<(progress: RunProgress) => string> = [
  (progress) => {
    const { source, inputBytes } = progress;
    const bytesPerSecond = rate(source.bytes, elapsed(progress));
    const of = inputBytes ? ` of ${formatBytes(inputBytes)}` : '';
    return [
      'source   ',
      `${formatCount(source.documents)} docs`,
      `${formatBytes(source.bytes)}${of} read (${formatBytes(bytesPerSecond)}/s)`,
    ].join('  ');
  },
  (progress) => {
    const stats = progress.generate;
    const seconds = elapsed(progress);
    const total = estimatedDocuments(progress.source, progress.inputBytes);
    const parts = [
      'generate ',
      `${formatCount(stats.documents)}${total ? `/~${formatCount(total)}` : ''} docs`,
      `${stats.requests.inFlight} in flight`,
      `${formatCount(rate(stats.requests.completed, seconds))} req/s`,
      `${formatCount(stats.requests.replayed)} replayed`,
      ...serverParts(stats.concurrency),
      `retries ${byCause(stats.retries)}`,
      `failures ${byCause(stats.failures)}`,
    ];
    if (total)
      parts.push(`ETA ${formatDuration(eta(stats.documents, total, rate(stats.documents, seconds)))}`);
    return parts.join('  ');
  },
  ({ assemble }) =>
    [
      'assemble ',
      `${formatCount(assemble.documents)} in`,
      `${formatCount(assemble.megadocs)} out`,
      `dropped ${byCause(assemble.dropped)}`,
    ].join('  '),
  (progress) => {
    const { real, synthetic } = progress.pack;
    const tokens = real.tokens + synthetic.tokens;
    return [
      'tokenize ',
      `real ${formatCount(real.tokens)} tok`,
      `synthetic ${formatCount(synthetic.tokens)} tok`,
      `${formatCount(rate(tokens, elapsed(progress)))} tok/s`,
    ].join('  ');
  },
  ({ pack }) =>
    [
      'pack     ',
      `real ${formatCount(pack.real.sequences)} seq`,
      `synthetic ${formatCount(pack.synthetic.sequences)} seq`,
    ].join('  '),
  ({ write }) =>
    write.started
      ? ['mix      ', `${formatCount(write.written)}/${formatCount(write.planned)} sequences written`].join(
          '  ',
        )
      : 'mix       waiting until every sequence is packed',
  ({ write }) => ['sink     ', `${write.shards} shards`].join('  '),
];

function summaryRows(summary: RunSummary, progress: RunProgress, config: RunConfig): Array<[string, string]> {
  const { assemble, generate } = progress;
  const { mix, tokens, output } = summary;
  const usage = totalTokens(generate);
  return [
    servedModelRow(generate),
    [
      'documents',
      `${assemble.documents} in, ${failedDocuments(generate)}, ${assemble.kept} made synthetic output, dropped ${byCause(assemble.dropped)}`,
    ],
    [
      'generations',
      `${generate.generations} (filtered ${byCause(generate.filtered)}, failed requests ${generate.requests.failed})`,
    ],
    [
      'requests',
      `${generate.requests.completed} answered, ${generate.requests.replayed} replayed from the journal`,
    ],
    ['LLM tokens in/out', `${formatCount(usage.prompt)} / ${formatCount(usage.completion)}`],
    ['latency p50/p99', latencyRange(generate)],
    ...concurrencyRows(generate.concurrency),
    longDocsRow(generate),
    [
      'tokens',
      `real ${formatCount(tokens.real)}, synthetic ${formatCount(tokens.synthetic)} (expansion ${tokens.expansionFactor.toFixed(2)}x)`,
    ],
    [
      config.format === 'megatron' ? 'entries' : 'sequences',
      `${mix.sequences.total}${config.format === 'megatron' ? ' whole megadocs' : ` x ${config.seqLen}`} (real ${mix.sequences.real}, synthetic ${mix.sequences.synthetic}; synthetic weight ${mix.syntheticWeight.toFixed(3)})`,
    ],
    ...droppedRows(summary),
    ['real tokens seen', formatCount(mix.realTokensSeen)],
    ...documentTokensRows(summary),
    [
      'shards',
      `${output.shards} (${formatBytes(output.rawBytes)} raw, ${formatBytes(output.storedBytes)} stored)`,
    ],
    ...compressorRows(config.compression, runtimeOptionsFromEnv(process.env).zstdEngine),
    ...budgetRows(summary),
    ['wall time', formatDuration(summary.wallSeconds)],
  ];
}

/**
 * What packing and mixing left out: each stream's last partial sequence (--tail), and synthetic sequences
 * the --synthetic-weight had no room for (its slots are fewer than the sequences packed).
 */
function droppedRows({ pack, mix }: RunSummary): Array<[string, string]> {
  const { real, synthetic } = pack;
  const rows: Array<[string, string]> = [
    [
      'tail',
      `${formatCount(real.droppedTokens)} real + ${formatCount(synthetic.droppedTokens)} synthetic tokens dropped, ` +
        `${formatCount(real.paddedTokens + synthetic.paddedTokens)} padded`,
    ],
  ];
  const unused = synthetic.sequences - mix.sequences.synthetic;
  if (unused > 0) {
    rows.push([
      'not mixed in',
      `${unused} synthetic sequences (the synthetic weight takes ${mix.sequences.synthetic} of ${synthetic.sequences})`,
    ]);
  }
  return rows;
}
