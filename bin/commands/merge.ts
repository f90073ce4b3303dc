// `megadocs merge OUT`: joins the ranks' `OUT/rank-NNNNN/` datasets (MDS, Megatron, memmap) into one (lib/merge.ts),
// optionally pushing the merged index to the Hub dataset the ranks pushed their shards to.
import type { Command } from 'commander';
import { HubPusher } from '../../lib/hub/push.js';
import { mergeRankIndexes } from '../../lib/merge.js';
import { reportAlreadyComplete } from '../already-complete.js';
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
      const json = options.json as boolean;
      if (!options.pushTo && reportAlreadyComplete(display, 'merge', out, summary, json, '')) return;
      const target = pushTargetFrom(options);
      let pushed: string | undefined;
      if (target) {
        const hub = connectHub(process.env, { onRetry: (event) => display.log(describeRetry(event)) });
        try {
          const pusher = new HubPusher({ client: hub.client, target, root: out });
          // A merged Megatron pair is a new file beside its .idx; MDS and memmap indexes name the ranks' files.
          if (summary.format === 'megatron') pusher.addShard(summary.index.replace(/\.idx$/, '.bin'));
          await pusher.finish(summary.index);
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
