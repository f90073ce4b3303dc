// `megadocs generate INPUTS... --out OUT --llm URL --model M --recipe R`: LLM generations as jsonl.zst shards.
// Collects the flags into a config for parseGenerateConfig, reads the API key once, draws progress, prints the summary.
import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_MAX_CONCURRENCY } from '../../lib/backends/concurrency-controller.js';
import { LOCAL_DEFAULT_CONCURRENCY } from '../../lib/backends/local-model.js';
import { GENERATE_CONFIG_KEYS, parseGenerateConfig, RECORD_KEYS } from '../../lib/config.js';
import { MegadocsError } from '../../lib/errors.js';
import type { BudgetStop } from '../../lib/generate/budget.js';
import { LONG_DOCS_MODES } from '../../lib/generate/long-docs.js';
import { type GenerateStats, latencyQuantile, totalTokens } from '../../lib/generate/stats.js';
import { isHubUrl } from '../../lib/hub/url.js';
import {
  GENERATE_POINTS,
  type GenerateProgress,
  type GenerateSummary,
  newGenerateProgress,
  runGenerate,
} from '../../lib/pipeline/generate.js';
import { reportAlreadyComplete } from '../already-complete.js';
import { commandFor } from '../command-table.js';
import { runtimeOptionsFromEnv } from '../environment.js';
import { addHubSelectionOptions, connectHub, hubSelectionFrom } from '../hub-options.js';
import { runWithInterrupt } from '../interrupt.js';
import { addLocalLlmOptions, localRunOptions } from '../local-options.js';
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
  concurrencyRows,
  estimatedDocuments,
  eta,
  formatCount,
  formatDuration,
  ProgressDisplay,
  rate,
  serverParts,
  warnIfNoDocuments,
} from '../progress.js';
import { addReportOption, reportRows } from '../report-option.js';
import { addTransformOption, transformModulesFrom } from '../transform-options.js';

function collectList(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('expected a value or a comma-separated list');
  return [...(previous ?? []), ...items];
}

/**
 * --llm, --model, --api, --api-key-env, --concurrency, --max-concurrency, --rpm, --tpm, --reorder-buffer, --max-retries,
 * --max-failures, --timeout, --wait-for-server: where and how requests go.
 */
export function addLlmOptions(command: Command): Command {
  return command
    .option(
      '--llm <url>',
      'base URL of an OpenAI-compatible server (repeat or comma-separate for several), or a GGUF model run in-process: local:PATH.gguf or local:hf:ORG/REPO/FILE.gguf',
      collectList,
      [],
    )
    .option(
      '--model <name>',
      'model name sent to the server (default: the one its /v1/models lists; a local: model is named after its file)',
    )
    .addOption(
      choiceOption(
        '--api <kind>',
        'chat: /chat/completions (instruct models); completions: /completions (base models)',
        ['chat', 'completions'],
        'chat',
      ),
    )
    .option('--api-key-env <var>', 'environment variable that holds the API key', 'OPENAI_API_KEY')
    .option(
      '--concurrency <n|auto>',
      `requests in flight across all servers; auto (the default for servers): a limit per server from its /metrics or its answers (${LOCAL_DEFAULT_CONCURRENCY} for a local: model)`,
      numeric,
    )
    .option(
      '--max-concurrency <n>',
      `the most requests in flight that auto reaches, over all servers (default: ${DEFAULT_MAX_CONCURRENCY})`,
      numeric,
    )
    .option(
      '--rpm <n>',
      'requests per minute per server, kept under (hosted APIs; x-ratelimit headers are read too)',
      numeric,
    )
    .option(
      '--tpm <n>',
      'tokens per minute per server (prompt estimate + max_tokens × n), kept under',
      numeric,
    )
    .option(
      '--reorder-buffer <bytes>',
      'finished documents held for output order while an earlier one waits out retries (default: 256MiB)',
      parseByteSize,
    )
    .option('--max-retries <n>', 'retries of a request after 429, 5xx, resets and timeouts', numeric, 8)
    .option(
      '--reuse-journal',
      'start this run in an --out that holds a run of other options, replaying every answer its journal holds',
      false,
    )
    .option(
      '--max-failures <F>',
      'share of documents (0 to 1) whose requests may finally fail; above it the run ends incomplete (exit 3)',
      numeric,
      0.01,
    )
    .option(
      '--max-output-tokens <n>',
      'budget: start no document once the completion tokens of those kept reach N; the output ends at the first documents (in input order) that reach it; status budget-reached, resumable',
      numeric,
    )
    .option(
      '--max-documents <n>',
      'budget: the first N documents only; status budget-reached when the input holds more, resumable',
      numeric,
    )
    .option(
      '--timeout <seconds>',
      'per-attempt timeout, up to 86400 (a non-streamed answer arrives whole)',
      numeric,
      600,
    )
    .option(
      '--wait-for-server <seconds>',
      'while no server answers (loading a model, restarting), requests wait this long, then exit 2; 0: at once',
      numeric,
      600,
    );
}

/** --recipe and everything that decides the generations. */
export function addRecipeOptions(command: Command): Command {
  return command
    .option('--recipe <name|file>', 'rephrase, maga, stretch, or a custom recipe file (.json)', 'rephrase')
    .option('--generations <G>', 'generations per document (default: rephrase 4, maga 5, stretch 4)', numeric)
    .option(
      '--styles <list>',
      'rephrase styles: wiki, qa, simple, terse, distill, knowledge, facts',
      collectList,
    )
    .option('--templates <file>', 'JSON file that overrides prompt templates by name (e.g. "rephrase.wiki")')
    .option(
      '--n-per-request <n>',
      'most samples asked in one request (the n parameter; 1: servers without n)',
      numeric,
      16,
    )
    .option('--temperature <t>', "sampling temperature, 0 to 2 (overrides the recipe's)", numeric)
    .option('--top-p <p>', "nucleus sampling, above 0 up to 1 (overrides the recipe's)", numeric)
    .option('--max-tokens <n>', "new tokens per generation (overrides the recipe's)", numeric)
    .option('--seed <n>', 'global seed; each request gets hash(seed, document, recipe, index)', numeric, 0)
    .addOption(
      choiceOption(
        '--on-truncated <mode>',
        'generations cut by max tokens (finish_reason length): keep or drop them',
        ['keep', 'drop'],
        'keep',
      ),
    )
    .option('--max-input-tokens <n>', 'cut longer inputs at a line boundary', numeric)
    .option(
      '--context-size <n>',
      "the model's context in tokens, prompt and output (default: what the server reports, or the local model's)",
      numeric,
    )
    .option(
      '--generator-tokenizer <spec>',
      "counts the input budget, any --tokenizer spec (default: the local model's own; for a server, 1 token per byte)",
    )
    .addOption(
      choiceOption(
        '--long-docs <mode>',
        'a document over the input budget: cut into segments of whole lines, truncate it, or skip it',
        LONG_DOCS_MODES,
        'segment',
      ),
    )
    .option('--tokenizer <spec>', 'tokenizer for stretch split points and token limits', 'o200k_base')
    .option('--no-json-mode', "do not send response_format json_object for MAGA's stage 1");
}

export function register(program: Command): void {
  const command = commandFor(program, 'generate');
  addRecordOptions(command);
  addLlmOptions(command);
  addRecipeOptions(command);
  addLocalLlmOptions(command);
  addHubSelectionOptions(command);
  command
    .option('--compression <spec>', 'zstd, zstd:N (level N), or none', 'zstd:3')
    .option(
      '--shard-size <bytes>',
      'raw bytes per shard before compression (e.g. 64MiB)',
      parseByteSize,
      1 << 26,
    );
  addTransformOption(command, GENERATE_POINTS);
  addReportOption(command);
  addOutputOptions(command).action(async (inputs: string[], options: Record<string, unknown>) => {
    const config = parseGenerateConfig(
      {
        ...flagsFor(options, GENERATE_CONFIG_KEYS),
        inputs,
        record: flagsFor(options, RECORD_KEYS),
        timeoutSeconds: options.timeout,
      },
      'the command line',
    );
    const transformModules = await transformModulesFrom(options);
    const apiKey = apiKeyFrom(config.apiKeyEnv, options.apiKeyEnv !== 'OPENAI_API_KEY');
    const hub = inputs.some(isHubUrl) ? connectHub(process.env) : undefined;
    const progress = newGenerateProgress();
    const display = new ProgressDisplay({ quiet: options.quiet as boolean });
    display.track(() => renderProgress(progress));
    try {
      const summary = await runWithInterrupt((signal) =>
        runGenerate(config, {
          ...runtimeOptionsFromEnv(process.env),
          apiKey,
          progress,
          signal,
          onWarning: (message) => display.warn(message),
          local: localRunOptions(display, process.env),
          transformModules,
          hub: hub && { client: hub.client, selection: hubSelectionFrom(options) },
        }),
      );
      if (reportAlreadyComplete(display, 'generate', config.out, summary, options.json as boolean)) return;
      if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      warnIfNoDocuments(display, progress.source);
      display.summary(`megadocs generate: wrote ${config.out}`, [
        ...generateSummaryRows(progress.generate, summary),
        ...compressorRows(config.compression, runtimeOptionsFromEnv(process.env).zstdEngine),
        ...(await reportRows(config.out, options)),
      ]);
    } finally {
      display.stop();
      await hub?.close();
    }
  });
}

/** The key from the environment; only a variable named explicitly with --api-key-env must exist. */
export function apiKeyFrom(variable: string, required: boolean): string | undefined {
  const key = process.env[variable];
  if (!key && required) {
    throw new MegadocsError('BAD_OPTION', `the environment variable ${variable} is not set`, {
      where: '--api-key-env',
      hint: `Export ${variable} with the API key, or leave --api-key-env out to use OPENAI_API_KEY`,
    });
  }
  return key || undefined;
}

function byCause(counts: Record<string, number>): string {
  const entries = Object.entries(counts).filter(([, count]) => count > 0);
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return '0';
  return `${total} (${entries.map(([cause, count]) => `${cause} ${count}`).join(', ')})`;
}

function renderProgress(progress: GenerateProgress): string {
  const { generate: stats, source } = progress;
  const seconds = (Date.now() - stats.startedAt) / 1000;
  const docsPerSecond = rate(stats.documents, seconds);
  const estimatedTotal = estimatedDocuments(source, progress.inputBytes);
  const parts = [
    'generate',
    `${formatCount(stats.documents)}${estimatedTotal ? `/~${formatCount(estimatedTotal)}` : ''} docs`,
    `${stats.requests.inFlight} in flight`,
    `${formatCount(rate(stats.requests.completed, seconds))} req/s`,
    `${formatCount(rate(totalTokens(stats).completion, seconds))} out tok/s`,
    ...serverParts(stats.concurrency),
    `retries ${byCause(stats.retries)}`,
    `failures ${byCause(stats.failures)}`,
  ];
  if (estimatedTotal)
    parts.push(`ETA ${formatDuration(eta(stats.documents, estimatedTotal, docsPerSecond))}`);
  return parts.join('  ');
}

/** Request latency p50 / p99, or "-" when no request was answered in this run. */
export function latencyRange(stats: GenerateStats): string {
  const p50 = latencyQuantile(stats.latency, 0.5);
  if (Number.isNaN(p50)) return '-';
  return `${p50.toFixed(0)} ms / ${latencyQuantile(stats.latency, 0.99).toFixed(0)} ms`;
}

/** The model that served the requests and its context size (`model`, `contextSize` in megadocs.json). */
export function servedModelRow(stats: GenerateStats): [string, string] {
  const context =
    stats.contextSize === undefined ? 'context size not reported' : `context ${stats.contextSize} tokens`;
  return ['model', `${stats.model ?? '-'} (${context})`];
}

/** What was done to documents over the input budget (`longDocs` in megadocs.json). */
export function longDocsRow({ longDocs }: GenerateStats): [string, string] {
  return [
    'long documents',
    `${longDocs.segmented} segmented (${longDocs.segments} segments, ${longDocs.linesCut} lines cut), ${longDocs.truncated} truncated, ${longDocs.skipped} skipped, ${longDocs.retriedSmaller} retried smaller`,
  ];
}

/** How many documents lost generations to failed requests (kept in megadocs.json as `failedDocuments`). */
export function failedDocuments(stats: GenerateStats): string {
  return `${stats.failedDocuments} with failed requests`;
}

/** The closing summary: requests, retries and failures by cause, tokens, req/s, latency, wall time. */
export function generateSummaryRows(stats: GenerateStats, summary: GenerateSummary): Array<[string, string]> {
  const seconds = (Date.now() - stats.startedAt) / 1000;
  const tokens = totalTokens(stats);
  const { requests } = stats;
  const skipped = Object.values(stats.skipped).reduce((sum, count) => sum + count, 0);
  return [
    servedModelRow(stats),
    [
      'documents',
      `${stats.documents}${skipped ? ` (${byCause(stats.skipped)} skipped)` : ''}, ${failedDocuments(stats)}`,
    ],
    [
      'generations',
      `${stats.generations} (filtered ${byCause(stats.filtered)}, truncated ${stats.truncated})`,
    ],
    [
      'requests',
      `${requests.completed} answered (${requests.sent} attempts), ${requests.replayed} replayed from the journal`,
    ],
    ['retries', byCause(stats.retries)],
    ['failures', byCause(stats.failures)],
    ...Object.entries(stats.failureExamples).map(([cause, message]): [string, string] => [
      `  ${cause}`,
      message,
    ]),
    ['tokens in/out', `${formatCount(tokens.prompt)} / ${formatCount(tokens.completion)}`],
    ['req/s', formatCount(rate(requests.completed, seconds))],
    ['latency p50/p99', latencyRange(stats)],
    ...concurrencyRows(stats.concurrency),
    ['inputs cut', String(stats.inputsCut)],
    longDocsRow(stats),
    ['shards', String(summary.shards)],
    ...budgetRows(summary),
    ['wall time', formatDuration(seconds)],
  ];
}

/** Where `--max-output-tokens` / `--max-documents` cut the output (status budget-reached), when one did. */
export function budgetRows(summary: object): Array<[string, string]> {
  const { budget } = summary as { budget?: BudgetStop };
  if (!budget) return [];
  const flag = `--${budget.reason} ${budget.reason === 'max-documents' ? budget.limits.maxDocuments : budget.limits.maxOutputTokens}`;
  return [
    [
      'budget',
      `${flag} reached: the first ${budget.documents} documents kept (${formatCount(budget.outputTokens)} output tokens); rerun with a larger budget to continue`,
    ],
  ];
}
