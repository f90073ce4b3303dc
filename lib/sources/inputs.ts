// Turns the positional inputs of a run into the ordered list of shards to read, each with a stable name.
// Local paths and globs go to local.ts; `hf://` inputs go to the Hub resolver in lib/hub (options.hub).
import path from 'node:path';
import { MegadocsError } from '../errors.js';
import { createHubClient } from '../hub/client.js';
import type { HubInputOptions } from '../hub/shard.js';
import { type ExpandOptions, expandLocalInput } from './local.js';
import { type ShardRef, stableNameOf } from './types.js';

export type { ExpandOptions } from './local.js';

export type InputOptions = ExpandOptions & {
  /** How `hf://` inputs reach the Hub (client from HF_ENDPOINT/HF_TOKEN, --config/--split); default: huggingface.co, no token. */
  hub?: HubInputOptions;
};

const HUB_PREFIX = 'hf://';

/**
 * All shards of `inputs`, in the given input order; within a directory or glob, sorted by path.
 * An input that matches nothing is a BAD_INPUT error naming it, and so are two files with one stable name.
 */
export async function expandInputs(inputs: string[], options: InputOptions = {}): Promise<ShardRef[]> {
  const shards: ShardRef[] = [];
  const fileOf = new Map<string, string>();
  for (const input of inputs) {
    const hub = input.startsWith(HUB_PREFIX);
    // The Hub resolver (with the Hub client library, YAML and parquet readers) is loaded only for hf:// inputs:
    // a third of the start-up of a run over local files.
    const expanded = hub
      ? await (await import('../hub/shard.js')).expandHubInput(input, {
          onSkipped: options.onSkipped,
          ...(options.hub ?? { client: createHubClient() }),
        })
      : await expandLocalInput(input, options);
    for (const shard of expanded) {
      const file = hub ? shard.name : path.resolve(shard.name);
      const name = stableNameOf(shard);
      const earlier = fileOf.get(name);
      if (earlier !== undefined && earlier !== file) throw sameNameError(name, earlier, file, input);
      fileOf.set(name, file);
    }
    shards.push(...expanded);
  }
  return shards;
}

function sameNameError(name: string, earlier: string, file: string, input: string): MegadocsError {
  return new MegadocsError(
    'BAD_INPUT',
    `${earlier} and ${file} are both named "${name}": documents without an id would get the same ids (${name}:ROW)`,
    {
      where: input,
      hint: 'Pass a folder that holds both (or a glob below it): the names then include the folders that tell them apart',
    },
  );
}

/**
 * What the resolved inputs are, for a run's identity: each file's stable name and size, so a rerun whose glob now
 * matches other files, whose files changed, or whose Hub selection (`--config/--split`, revision) resolves to
 * other files is refused instead of continued, while the same files reached from another directory or by another
 * spelling of their path continue it.
 */
export function inputIdentity(shards: readonly ShardRef[]): Array<{ name: string; size: number | null }> {
  return shards.map((shard) => ({ name: stableNameOf(shard), size: shard.size ?? null }));
}

/** The inputs' total size in bytes when every file's size is known without opening it (for progress); else undefined. */
export function knownInputBytes(shards: readonly ShardRef[]): number | undefined {
  if (!shards.every((shard) => shard.size !== undefined)) return undefined;
  return shards.reduce((sum, shard) => sum + shard.size!, 0);
}
