// --rank/--world-size for commands that split their inputs among workers; the environment (Slurm, Kubernetes)
// is read here, in the CLI, and the resolved rank is passed to the pipeline.
import type { Command } from 'commander';
import { type ResolvedRank, resolveRank } from '../lib/ranks.js';
import { integerAtLeast } from './options.js';

export function addRankOptions(command: Command): Command {
  return command
    .option(
      '--rank <i>',
      'this worker among --world-size (default: from Slurm or JOB_COMPLETION_INDEX, else 0)',
      integerAtLeast(0),
    )
    .option(
      '--world-size <n>',
      'number of workers; each reads its share of the input shards into OUT/rank-NNNNN/',
      integerAtLeast(1),
    );
}

export function rankFrom(
  options: Record<string, unknown>,
  env: Record<string, string | undefined>,
): ResolvedRank {
  return resolveRank(
    { rank: options.rank as number | undefined, worldSize: options.worldSize as number | undefined },
    env,
  );
}
