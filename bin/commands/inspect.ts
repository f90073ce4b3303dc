// `megadocs inspect DIR`: validates a written dataset (MDS, jsonl, Megatron) shard by shard and prints what it holds;
// exits 0 when valid, 2 with the problems (each naming its shard) otherwise.
import type { Command } from 'commander';
import { MegadocsError } from '../../lib/errors.js';
import { type DatasetWriter, type InspectReport, inspectDataset } from '../../lib/inspect.js';
import { commandFor } from '../command-table.js';
import { runtimeOptionsFromEnv } from '../environment.js';

function wholeNumber(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) {
    throw new MegadocsError('BAD_OPTION', `--decode ${value} is not a whole number`, {
      hint: 'Pass e.g. --decode 2',
    });
  }
  return number;
}

/**
 * How to get a sound dataset again. The same command alone is refused (the run is complete), so the rerun
 * needs --overwrite, in the run directory (for a --streams separate stream, the directory above it).
 */
function repairHint(writer: DatasetWriter | null): string {
  if (!writer?.command)
    return 'Copy the dataset again from where it came from, or rewrite it with the command that made it';
  const paid =
    writer.command === 'pack' ? '' : ' (this empties its journal too: every LLM request is sent again)';
  return (
    `Rewrite it: rerun the \`megadocs ${writer.command}\` command that wrote ${writer.runDir} with --overwrite${paid}, ` +
    'or copy the dataset again from where it came from'
  );
}

function humanSummary(report: InspectReport): string {
  const ratio = report.compressionRatio ? `${report.compressionRatio.toFixed(2)}x` : '-';
  const rows: Array<[string, string]> = [
    ['format', `${report.format}${report.compression ? ` + ${report.compression}` : ''}`],
    ['shards', String(report.shards)],
    [report.format === 'jsonl' ? 'records' : 'samples', String(report.samples)],
  ];
  if (report.format === 'mds') rows.push(['columns', report.columns.join(', ')]);
  if (report.format !== 'jsonl') {
    rows.push(['tokens', String(report.tokens)]);
    if (report.minTokens !== null)
      rows.push(['tokens/sample', `${report.minTokens} min, ${report.maxTokens} max`]);
  }
  rows.push(
    ['raw bytes', String(report.rawBytes)],
    ['stored bytes', String(report.storedBytes)],
    ['ratio', ratio],
  );
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [`${report.dir}: ${report.valid ? 'valid' : `INVALID (${report.problems.length} problems)`}`];
  lines.push(...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`));
  for (const { sample, text } of report.decoded) lines.push(`--- sample ${sample} ---`, text);
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  commandFor(program, 'inspect')
    .option('--decode <n>', 'decode the first N samples to text', wholeNumber)
    .option('--tokenizer <spec>', 'tokenizer for --decode (default: the one in DIR/megadocs.json)')
    .option('--json', 'print the report as JSON on stdout', false)
    .option('-q, --quiet', 'print nothing when the dataset is valid', false)
    .action(
      async (
        dir: string,
        options: { decode?: number; tokenizer?: string; json: boolean; quiet: boolean },
      ) => {
        const report = await inspectDataset(dir, {
          decode: options.decode,
          tokenizer: options.tokenizer,
          hubTokenizer: runtimeOptionsFromEnv(process.env).hubTokenizer,
        });
        if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else if (!options.quiet) process.stdout.write(humanSummary(report));
        if (!report.valid) {
          const shown = report.problems.slice(0, 20).join('\n  ');
          const more = report.problems.length > 20 ? `\n  ... and ${report.problems.length - 20} more` : '';
          throw new MegadocsError('CORRUPT', `${report.problems.length} problem(s):\n  ${shown}${more}`, {
            where: dir,
            hint: repairHint(report.writer),
          });
        }
      },
    );
}
