// Turns the positional inputs of a run into the ordered list of shards to read.
// Local paths and globs go to local.ts; `hf://` inputs go to the Hub resolver (one marked place below).
import { MegadocsError } from '../errors.js';
import { type ExpandOptions, expandLocalInput } from './local.js';
import type { ShardRef } from './types.js';

export type { ExpandOptions } from './local.js';

const HUB_PREFIX = 'hf://';

/**
 * All shards of `inputs`, in the given input order; within a directory or glob, sorted by path.
 * An input that matches nothing is a BAD_INPUT error naming it.
 */
export async function expandInputs(inputs: string[], options: ExpandOptions = {}): Promise<ShardRef[]> {
  const shards: ShardRef[] = [];
  for (const input of inputs) {
    shards.push(
      ...(input.startsWith(HUB_PREFIX)
        ? await expandHubInput(input)
        : await expandLocalInput(input, options)),
    );
  }
  return shards;
}

// ---- Hub inputs: the hf:// resolver plugs in here (and only here). ----
async function expandHubInput(input: string): Promise<ShardRef[]> {
  throw new MegadocsError('BAD_INPUT', 'hf:// inputs are not supported yet', {
    where: input,
    hint: 'Download the files and pass local paths instead',
  });
}
