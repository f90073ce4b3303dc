// `megadocs plan INPUTS... [run options]`: what a run would take, before launch and without any LLM request
// (lib/cost-plan.ts). Takes every option of `run` (put `plan` in front of a run command line) and prints the plan.
import { type Command, InvalidArgumentError } from 'commander';
import { type PlanFigures, planRun } from '../../lib/cost-plan.js';
import { isHubUrl } from '../../lib/hub/url.js';
import { commandFor } from '../command-table.js';
import { runtimeOptionsFromEnv } from '../environment.js';
import { connectHub } from '../hub-options.js';
import { integerAtLeast } from '../options.js';
import { formatBytes, formatCount, formatDuration, ProgressDisplay } from '../progress.js';
import { addRunOptions, configFrom } from './run.js';

/** plan's own options: not run's, so kept out of the run config. */
const PLAN_FLAGS = ['sample', 'serverTokensPerS', 'pricePerMtok', 'outputRatio'];
/** A run needs --out and --llm; a plan writes nothing and sends nothing, so it does without them. */
const PLAN_DEFAULTS = { out: '.', llm: ['http://planned.invalid/v1'] };

function positive(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return parsed;
}

function prices(value: string): [number, number] {
  const parts = value.split(',').map((part) => Number(part.trim()));
  if (parts.length !== 2 || parts.some((part) => !Number.isFinite(part) || part < 0)) {
    throw new InvalidArgumentError(
      `expected two prices IN,OUT in USD per million tokens, e.g. 0.15,0.60, got "${value}"`,
    );
  }
  return parts as [number, number];
}

/** Dollars with cents, or with 4 significant digits under a dollar. */
function usd(value: number): string {
  return `$${value >= 1 ? value.toFixed(2) : value.toPrecision(4)}`;
}

function planRows(plan: PlanFigures): Array<[string, string]> {
  const a = plan.assumptions!;
  const estimate = plan.estimated ? ` (estimated from a sample of ${plan.sampled})` : '';
  const dataset = plan.dataset!;
  const rows: Array<[string, string]> = [
    ['documents', `${formatCount(plan.documents)}${estimate}`],
    ['input tokens', formatCount(plan.inputTokens ?? 0)],
    [
      'requests',
      `${formatCount(plan.requests)} (${formatCount(plan.samples ?? 0)} samples, n up to ${a.nPerRequest}; ${formatCount(plan.generations)} generations asked)`,
    ],
    ['prompt tokens', formatCount(plan.promptTokens)],
    [
      'output tokens',
      `${formatCount(plan.outputTokens)} expected (a rewrite ${a.rewriteRatio} of its prompt's tokens, at most max_tokens; a rationale ${a.rationaleShare} of max_tokens; MAGA's pairs ${a.pairsTokens})`,
    ],
  ];
  if (dataset.sequences !== undefined) {
    rows.push([
      'dataset',
      `${formatCount(dataset.tokens!)} tokens (real ${formatCount(dataset.realTokens!)}, synthetic ${formatCount(dataset.syntheticTokens!)}), ${formatCount(dataset.sequences)} sequences`,
    ]);
  }
  rows.push(['shards', `${dataset.shards} (${formatBytes(dataset.bytes)} before compression)`]);
  rows.push([
    'LLM time',
    plan.llmSeconds === undefined
      ? 'pass --server-tokens-per-s N (generated tokens per second of one server)'
      : `${formatDuration(plan.llmSeconds)} at ${formatCount(a.serverTokensPerS!)} tokens/s x ${a.endpoints} endpoint${a.endpoints === 1 ? '' : 's'}`,
  ]);
  rows.push([
    'cost',
    plan.cost
      ? `${usd(plan.cost.total)} (prompt ${usd(plan.cost.input)} + output ${usd(plan.cost.output)} at $${a.pricePerMtok![0]} / $${a.pricePerMtok![1]} per M tokens)`
      : 'pass --price-per-mtok IN,OUT (USD per million prompt, generated tokens)',
  ]);
  return rows;
}

export function register(program: Command): void {
  const command = addRunOptions(commandFor(program, 'plan'))
    .option(
      '--sample <N>',
      'plan on a seeded sample of N documents (seed: --seed); default: all documents',
      integerAtLeast(1),
    )
    .option(
      '--server-tokens-per-s <N>',
      'generated tokens per second of one server (several --llm share the work)',
      positive,
    )
    .option(
      '--price-per-mtok <IN,OUT>',
      'USD per million prompt tokens and per million generated tokens',
      prices,
    )
    .option(
      '--output-ratio <R>',
      "a rewrite's expected tokens as a share of its prompt's (default 0.57)",
      positive,
    );
  command.action(async (inputs: string[], options: Record<string, unknown>) => {
    const config = await configFrom(command, inputs, options.config as string | undefined, {
      leaveOut: PLAN_FLAGS,
      defaults: PLAN_DEFAULTS,
    });
    const hub = config.inputs.some(isHubUrl) ? connectHub(process.env) : undefined;
    try {
      const plan = await planRun(config, {
        sample: options.sample as number | undefined,
        hubTokenizer: runtimeOptionsFromEnv(process.env).hubTokenizer,
        serverTokensPerS: options.serverTokensPerS as number | undefined,
        pricePerMtok: options.pricePerMtok as [number, number] | undefined,
        ...(options.outputRatio !== undefined && {
          assumptions: { rewriteRatio: options.outputRatio as number },
        }),
        hub: hub && {
          client: hub.client,
          selection:
            config.subset === undefined && config.split === undefined
              ? undefined
              : { config: config.subset, split: config.split },
        },
      });
      if (options.json) process.stdout.write(`${JSON.stringify(plan)}\n`);
      const display = new ProgressDisplay({
        quiet: Boolean(options.json || options.quiet),
        stream: process.stdout,
      });
      display.summary('megadocs plan: no request sent', planRows(plan));
    } finally {
      await hub?.close();
    }
  });
}
