// `--report` on pack, generate and run: after a complete run, write OUT/report.html (lib/report) with the
// report command's defaults; the summary gets a `report` row naming the file.
import type { Command } from 'commander';
import { writeReport } from '../lib/report/index.js';
import { runtimeOptionsFromEnv } from './environment.js';

export function addReportOption(command: Command): Command {
  return command.option(
    '--report',
    'when the run completes, write OUT/report.html (as `megadocs report OUT` does)',
    false,
  );
}

/** Writes the report of the complete run in `out` when --report was given: the summary rows that say so. */
export async function reportRows(
  out: string,
  options: Record<string, unknown>,
): Promise<Array<[string, string]>> {
  if (!options.report) return [];
  const written = await writeReport(out, { hubTokenizer: runtimeOptionsFromEnv(process.env).hubTokenizer });
  return [['report', `${written.file} (${written.samples} samples)`]];
}
