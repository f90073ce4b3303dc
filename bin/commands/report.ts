// `megadocs report DIR`: writes DIR/report.html (or --out FILE), one self-contained page about a pack, generate
// or run output: the run at a glance, drops by cause, histograms, a seeded sample browser (lib/report).
import type { Command } from 'commander';
import { REPORT_DEFAULTS, writeReport } from '../../lib/report/index.js';
import { commandFor } from '../command-table.js';
import { runtimeOptionsFromEnv } from '../environment.js';
import { integerAtLeast } from '../options.js';
import { formatBytes, ProgressDisplay } from '../progress.js';

export function register(program: Command): void {
  commandFor(program, 'report')
    .option('--samples <n>', 'documents in the sample browser', integerAtLeast(0), REPORT_DEFAULTS.samples)
    .option(
      '--seed <n>',
      'picks the sampled documents and sequences',
      integerAtLeast(0),
      REPORT_DEFAULTS.seed,
    )
    .option(
      '--scan <n>',
      'documents read from the run (the sample and the histograms are drawn from the first N)',
      integerAtLeast(1),
      REPORT_DEFAULTS.scan,
    )
    .option('--out <file>', 'where to write the page (default: DIR/report.html)')
    .option('-q, --quiet', 'no summary on stderr', false)
    .option('--json', 'print the summary as JSON on stdout', false)
    .action(async (dir: string, options: Record<string, unknown>) => {
      const display = new ProgressDisplay({ quiet: options.quiet as boolean });
      const written = await writeReport(dir, {
        samples: options.samples as number,
        seed: options.seed as number,
        scan: options.scan as number,
        out: options.out as string | undefined,
        hubTokenizer: runtimeOptionsFromEnv(process.env).hubTokenizer,
      });
      if (options.json) process.stdout.write(`${JSON.stringify(written)}\n`);
      for (const note of written.notes) display.warn(note);
      display.summary(`megadocs report: wrote ${written.file}`, [
        ['size', formatBytes(written.bytes)],
        ['samples', String(written.samples)],
        ['documents read', String(written.documentsRead)],
      ]);
    });
}
