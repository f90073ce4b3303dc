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

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1 << 20,
  g: 1e9,
  gb: 1e9,
  gib: 1 << 30,
};

/** "64MiB", "1GB", "65536" -> bytes. */
export function parseByteSize(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? BYTE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new InvalidArgumentError(`expected a size such as 65536, 64MiB or 1GB, got "${value}"`);
  }
  return Math.round(Number(match[1]) * unit);
}
