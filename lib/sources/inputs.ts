// Turns the positional inputs of a run into the ordered list of shards to read.
// Local paths and globs go to local.ts; `hf://` inputs go to the Hub resolver in lib/hub (options.hub).
import { createHubClient } from '../hub/client.js';
import { expandHubInput, type HubInputOptions } from '../hub/shard.js';
import { type ExpandOptions, expandLocalInput } from './local.js';
import type { ShardRef } from './types.js';

export type { ExpandOptions } from './local.js';

export type InputOptions = ExpandOptions & {
  /** How `hf://` inputs reach the Hub (client from HF_ENDPOINT/HF_TOKEN, --config/--split); default: huggingface.co, no token. */
  hub?: HubInputOptions;
};

const HUB_PREFIX = 'hf://';

/**
 * All shards of `inputs`, in the given input order; within a directory or glob, sorted by path.
 * An input that matches nothing is a BAD_INPUT error naming it.
 */
export async function expandInputs(inputs: string[], options: InputOptions = {}): Promise<ShardRef[]> {
  const shards: ShardRef[] = [];
  for (const input of inputs) {
    shards.push(
      ...(input.startsWith(HUB_PREFIX)
        ? await expandHubInput(input, {
            onSkipped: options.onSkipped,
            ...(options.hub ?? { client: createHubClient() }),
          })
        : await expandLocalInput(input, options)),
    );
  }
  return shards;
}

/**
 * What the resolved inputs are, for a run's identity: each file's name and size, so a rerun whose glob now
 * matches other files, whose files changed, or whose Hub selection (`--config/--split`, revision) resolves to
 * other files is refused instead of continued.
 */
export function inputIdentity(shards: readonly ShardRef[]): Array<{ name: string; size: number | null }> {
  return shards.map((shard) => ({ name: shard.name, size: shard.size ?? null }));
}

/** The inputs' total size in bytes when every file's size is known without opening it (for progress); else undefined. */
export function knownInputBytes(shards: readonly ShardRef[]): number | undefined {
  if (!shards.every((shard) => shard.size !== undefined)) return undefined;
  return shards.reduce((sum, shard) => sum + shard.size!, 0);
}
