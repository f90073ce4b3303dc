// Command-line options shared by several commands (inputs, output directory, output verbosity),
// declared once so `pack`, `generate` and `run` spell them the same way (lib/config.ts checks their values).
import { type Command, InvalidArgumentError, Option } from 'commander';

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

/**
 * A number flag's value as a number; one that is not a number is kept as given. Its range is checked by the
 * command's config schema (lib/config.ts), with the same message a library caller gets.
 */
export function numeric(value: string): number | string {
  const parsed = Number(value);
  return value.trim() !== '' && Number.isFinite(parsed) ? parsed : value;
}

/** An option whose accepted values --help lists; the value given is checked by the config schema, as `numeric`'s. */
export function choiceOption(
  flags: string,
  description: string,
  choices: readonly string[],
  fallback: string,
): Option {
  return new Option(flags, description)
    .choices(choices)
    .argParser((value: string) => value)
    .default(fallback);
}

/** The values of `keys` among commander's options: a raw config, for the command's parse function to check. */
export function flagsFor(options: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    keys.filter((key) => options[key] !== undefined).map((key) => [key, options[key]]),
  );
}

/** --text-field, --id-field, --on-error: how input records become documents. */
export function addRecordOptions(command: Command): Command {
  return command
    .option('--text-field <name>', 'field that holds the document text', 'text')
    .option('--id-field <name>', 'field that holds the document id (missing ids become FILE:ROW)', 'id')
    .addOption(
      choiceOption(
        '--on-error <mode>',
        'malformed input records: stop with an error, or skip and count them',
        ['fail', 'skip'],
        'fail',
      ),
    );
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
