// `megadocs pull hf://datasets/ORG/NAME[@REV][/GLOB] DIR`: mirrors Hub files to disk with the repo's layout,
// a progress line in bytes/s, a closing summary (or --json); rerunning resumes what was left.
import type { Command } from 'commander';
import { MegadocsError } from '../../lib/errors.js';
import { resolveHubFiles } from '../../lib/hub/files.js';
import { type PullSummary, pullHubFiles } from '../../lib/hub/pull.js';
import { parseHubUrl } from '../../lib/hub/url.js';
import { commandFor } from '../command-table.js';
import { addHubSelectionOptions, connectHub, describeRetry, hubSelectionFrom } from '../hub-options.js';
import { runWithInterrupt } from '../interrupt.js';
import { integerAtLeast } from '../options.js';
import { eta, formatBytes, formatDuration, ProgressDisplay, rate } from '../progress.js';

export function register(program: Command): void {
  const command = commandFor(program, 'pull');
  addHubSelectionOptions(command)
    .option('-j, --concurrency <n>', 'files downloaded at once', integerAtLeast(1), 8)
    .option('-q, --quiet', 'no progress and no summary on stderr', false)
    .option('--json', 'print the final summary as JSON on stdout', false)
    .action(async (source: string, dir: string, options: Record<string, unknown>) => {
      const concurrency = options.concurrency as number;
      const display = new ProgressDisplay({ quiet: options.quiet as boolean });
      const hub = connectHub(process.env, {
        connections: concurrency + 2,
        onRetry: (event) => display.log(describeRetry(event)),
      });
      try {
        const files = await resolveHubFiles(parseHubUrl(source), hub.client, hubSelectionFrom(options));
        const state = {
          bytes: 0,
          done: 0,
          settledBytes: 0,
          total: files.reduce((sum, file) => sum + file.size, 0),
        };
        display.track((seconds) => renderProgress(state, files.length, seconds));
        const startedAt = Date.now();
        try {
          const summary = await runWithInterrupt((signal) =>
            pullHubFiles(files, dir, hub.client, {
              concurrency,
              signal,
              onProgress: (event) => {
                state.bytes += event.bytes;
                if (!event.finished) return;
                state.done += 1;
                if (event.finished.outcome === 'skipped') state.settledBytes += event.finished.file.size;
              },
            }).catch((error: unknown) => {
              if (!signal.aborted) throw error;
              throw new MegadocsError('INTERRUPTED', 'pull interrupted', { where: dir });
            }),
          );
          printSummary(
            display,
            summary,
            { source, dir, seconds: (Date.now() - startedAt) / 1000 },
            options.json as boolean,
          );
        } finally {
          display.stop();
        }
      } finally {
        await hub.close();
      }
    });
}

function renderProgress(
  state: { bytes: number; done: number; settledBytes: number; total: number },
  files: number,
  seconds: number,
): string {
  const speed = rate(state.bytes, seconds);
  const have = state.bytes + state.settledBytes;
  return [
    'pull',
    `${state.done}/${files} files`,
    `${formatBytes(have)} / ${formatBytes(state.total)}`,
    `${formatBytes(speed)}/s`,
    `ETA ${formatDuration(eta(have, state.total, speed))}`,
  ].join('  ');
}

function printSummary(
  display: ProgressDisplay,
  summary: PullSummary,
  run: { source: string; dir: string; seconds: number },
  json: boolean,
): void {
  const bytesPerSecond = rate(summary.bytes, run.seconds);
  if (json) process.stdout.write(`${JSON.stringify({ ...run, ...summary, bytesPerSecond })}\n`);
  display.summary(`megadocs pull: ${run.source} -> ${run.dir}`, [
    ['files', `${summary.files} (${formatBytes(summary.totalBytes)})`],
    ['downloaded', String(summary.downloaded)],
    ['resumed', String(summary.resumed)],
    ['already complete', String(summary.skipped)],
    ['received', `${formatBytes(summary.bytes)} (${formatBytes(bytesPerSecond)}/s)`],
    ['wall time', formatDuration(run.seconds)],
  ]);
}
