// The commands of the CLI by name: what each takes and does (for every --help) and where its module is, so
// bin/megadocs.ts loads only the module of the command that runs, and `--help`/`--version` load none.
import type { Command } from 'commander';

/** What a command module exports: register(program) adds the command, its options and its action. */
export interface CommandModule {
  register(program: Command): void;
}

export interface CommandEntry {
  name: string;
  description: string;
  /** The positional arguments, as commander declares them: [`<name>` or `[name...]`, description]. */
  arguments: ReadonlyArray<readonly [string, string]>;
  load(): Promise<CommandModule>;
}

const INPUTS = 'files, directories (recursive) or globs: .jsonl .json .gz .zst .parquet';
const DATASET_DIR = 'dataset directory (holds index.json)';

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'run',
    description:
      'documents -> LLM generations -> megadocs -> mixed, shuffled token shards (MDS), as one resumable stream',
    arguments: [['[inputs...]', INPUTS]],
    load: () => import('./commands/run.js'),
  },
  {
    name: 'generate',
    description: 'generate synthetic documents with an LLM (rephrase, MAGA, stretch) into jsonl.zst shards',
    arguments: [['<inputs...>', INPUTS]],
    load: () => import('./commands/generate.js'),
  },
  {
    name: 'pack',
    description: 'tokenize documents and pack them into fixed-length sequences in MDS (or jsonl.zst) shards',
    arguments: [['<inputs...>', INPUTS]],
    load: () => import('./commands/pack.js'),
  },
  {
    name: 'inspect',
    description:
      'validate a dataset written by megadocs (index.json, every shard, every sample) and summarize it',
    arguments: [['<dir>', DATASET_DIR]],
    load: () => import('./commands/inspect.js'),
  },
  {
    name: 'feed',
    description:
      'stream the tokens of an MDS dataset to stdout as raw integers (for a trainer reading a pipe)',
    arguments: [['<dir>', DATASET_DIR]],
    load: () => import('./commands/feed.js'),
  },
  {
    name: 'report',
    description:
      'write DIR/report.html: the run at a glance, drops, histograms and a seeded sample of documents with their generations',
    arguments: [['<dir>', 'the --out directory of a pack, generate or run command']],
    load: () => import('./commands/report.js'),
  },
  {
    name: 'pull',
    description:
      'download Hub dataset files to DIR (same layout), verified, resumable; reads HF_TOKEN and HF_ENDPOINT',
    arguments: [
      ['<source>', 'hf://datasets/ORG/NAME[@REVISION][/PATH-OR-GLOB]'],
      ['<dir>', 'destination directory'],
    ],
    load: () => import('./commands/pull.js'),
  },
  {
    name: 'merge',
    description:
      'write OUT/index.json over all OUT/rank-NNNNN/ datasets written by --rank/--world-size workers',
    arguments: [['<out>', 'the --out directory the ranks wrote to']],
    load: () => import('./commands/merge.js'),
  },
  {
    name: 'plan',
    description:
      'before launch, with no LLM request: documents, tokens, requests, output dataset, LLM time and cost of a run command line',
    arguments: [['[inputs...]', INPUTS]],
    load: () => import('./commands/plan.js'),
  },
  {
    name: 'efficiency',
    description:
      'data efficiency: fit L(D) = A / D^alpha + E to a real-data-only baseline, and D_eff(L) / D0 of a method',
    arguments: [
      ['<action>', 'fit: the law and its residuals; at: D_eff(L) and D_eff / D0 (with --tokens D0 --loss L)'],
      ['<baseline>', 'CSV of the baseline runs: unique real tokens and loss per row (header tokens,loss)'],
    ],
    load: () => import('./commands/efficiency.js'),
  },
];

/** What a usage error adds after the message: where the options are listed (not the whole help). */
export function helpPointer(commandName?: string): string {
  return commandName
    ? `Run \`megadocs ${commandName} --help\` for the options.`
    : 'Run `megadocs --help` for the commands.';
}

/**
 * Adds command `name` to `program` with its description and arguments from the table; a usage error in it
 * prints the message and a pointer to its --help. The command's module adds its options and action.
 */
export function commandFor(program: Command, name: string): Command {
  const entry = COMMANDS.find((command) => command.name === name);
  if (!entry) throw new Error(`no command "${name}" in the command table`);
  const command = program
    .command(entry.name)
    .description(entry.description)
    .showHelpAfterError(helpPointer(entry.name));
  for (const [spec, description] of entry.arguments) command.argument(spec, description);
  return command;
}
