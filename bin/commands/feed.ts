// `megadocs feed DIR`: writes every sample's tokens (MDS, memmap, Megatron) to stdout as raw little-endian
// integers for a trainer reading a pipe; storage order or a seeded shuffle; quiet when the reader closes the pipe.
import type { Command } from 'commander';
import { MegadocsError } from '../../lib/errors.js';
import { DEFAULT_WINDOW_SHARDS, writeFeed } from '../../lib/feed.js';
import { commandFor } from '../command-table.js';

function integer(name: string, minimum: number) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < minimum) {
      throw new MegadocsError('BAD_OPTION', `${name} ${value} must be a whole number >= ${minimum}`, {
        where: name,
      });
    }
    return number;
  };
}

function dtype(value: string): 'uint16' | 'uint32' {
  if (value === 'uint16' || value === 'uint32') return value;
  throw new MegadocsError('BAD_OPTION', `--dtype ${value} is not supported`, {
    hint: 'Use uint32 or uint16',
  });
}

const SHUFFLE_HELP = `
Output: for each sample, its tokens as little-endian ${'`'}--dtype${'`'} integers, nothing between samples
(read seq_len values at a time; a Megatron pair's entries are whole documents, of any length).
uint16 fails with a message naming the sample if an id is >= 65536. A shard is an MDS shard, a memmap
part, or 4096 entries of a Megatron pair.

Shuffle (--shuffle, reproducible for a given --seed): for each epoch, the shard order is permuted with a
permutation keyed by (seed, epoch); the shards are then taken --window-shards at a time, and the samples
of each window come out in a permutation keyed by (seed, epoch, window). Memory holds one window of raw
shards. Each epoch of --epochs gets its own permutations; without --shuffle every epoch is storage order.`;

export function register(program: Command): void {
  commandFor(program, 'feed')
    .option('--dtype <dtype>', 'uint32 or uint16', dtype, 'uint32' as const)
    .option('--shuffle', 'shuffle at sequence level (see below)', false)
    .option('--seed <n>', 'shuffle seed', integer('--seed', 0), 0)
    .option('--epochs <n>', 'passes over the dataset', integer('--epochs', 1), 1)
    .option(
      '--window-shards <n>',
      'shards shuffled together',
      integer('--window-shards', 1),
      DEFAULT_WINDOW_SHARDS,
    )
    .addHelpText('after', SHUFFLE_HELP)
    .action(
      async (
        dir: string,
        options: {
          dtype: 'uint16' | 'uint32';
          shuffle: boolean;
          seed: number;
          epochs: number;
          windowShards: number;
        },
      ) => {
        await writeFeed(dir, process.stdout, {
          dtype: options.dtype,
          shuffleSeed: options.shuffle ? options.seed : undefined,
          epochs: options.epochs,
          windowShards: options.windowShards,
        });
      },
    );
}
