// Command-line options shared by several commands (inputs, output directory, output verbosity),
// declared once so `pack`, `generate` and `run` spell and validate them the same way.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { RecordOptions } from '../lib/sources/types.js';

/** Parses a whole number >= min for commander, with an error that names the flag's rule. */
export function integerAtLeast(min: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) {
      throw new InvalidArgumentError(`expected a whole number >= ${min}, got "${value}"`);
    }
    return parsed;
  };
}

/** Parses a finite number in [min, max]. */
export function numberBetween(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got "${value}"`);
    }
    return parsed;
  };
}

/** --text-field, --id-field, --on-error: how input records become documents. */
export function addRecordOptions(command: Command): Command {
  return command
    .option('--text-field <name>', 'field that holds the document text', 'text')
    .option('--id-field <name>', 'field that holds the document id (missing ids become FILE:ROW)', 'id')
    .addOption(
      new Option('--on-error <mode>', 'malformed input records: stop with an error, or skip and count them')
        .choices(['fail', 'skip'])
        .default('fail'),
    );
}

export function recordOptionsFrom(options: Record<string, unknown>): RecordOptions {
  return {
    textField: options.textField as string,
    idField: options.idField as string,
    onError: options.onError as RecordOptions['onError'],
  };
}

/** --out, --overwrite, --quiet, --json: where results go and how much is printed. */
export function addOutputOptions(command: Command): Command {
  return command
    .requiredOption('-o, --out <dir>', 'output directory (the run directory: dataset, megadocs.json, state/)')
    .option('--overwrite', 'replace the contents of a non-empty --out', false)
    .option('-q, --quiet', 'no progress and no summary on stderr', false)
    .option('--json', 'print the final summary as JSON on stdout', false);
}
