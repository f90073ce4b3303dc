// `megadocs merge OUT`: joins the ranks' `OUT/rank-NNNNN/index.json` into `OUT/index.json` (FORMATS.md),
// optionally pushing the merged index to the Hub dataset the ranks pushed their shards to.
import type { Command } from 'commander';
import { HubPusher } from '../../lib/hub/push.js';
import { mergeRankIndexes } from '../../lib/merge.js';
import { commandFor } from '../command-table.js';
import { addPushOption, connectHub, describeRetry, pushTargetFrom } from '../hub-options.js';
import { integerAtLeast } from '../options.js';
import { formatCount, ProgressDisplay } from '../progress.js';

export function register(program: Command): void {
  const command = commandFor(program, 'merge');
  addPushOption(command)
    .option(
      '--world-size <n>',
      'the number of ranks that must be there (default: up to the highest rank folder)',
      integerAtLeast(1),
    )
    .option('-q, --quiet', 'no summary on stderr', false)
    .option('--json', 'print the summary as JSON on stdout', false)
    .action(async (out: string, options: Record<string, unknown>) => {
      const display = new ProgressDisplay({ quiet: options.quiet as boolean });
      const summary = await mergeRankIndexes(out, { worldSize: options.worldSize as number | undefined });
      const target = pushTargetFrom(options);
      let pushed: string | undefined;
      if (target) {
        const hub = connectHub(process.env, { onRetry: (event) => display.log(describeRetry(event)) });
        try {
          await new HubPusher({ client: hub.client, target, root: out }).finish('index.json');
          pushed = options.pushTo as string;
        } finally {
          await hub.close();
        }
      }
      if (options.json) process.stdout.write(`${JSON.stringify({ ...summary, pushed })}\n`);
      display.summary(`megadocs merge: wrote ${summary.index}`, [
        ['ranks', String(summary.ranks)],
        ['shards', String(summary.shards)],
        ['samples', formatCount(summary.samples)],
        ...(pushed ? [['pushed to', pushed] as [string, string]] : []),
      ]);
    });
}
