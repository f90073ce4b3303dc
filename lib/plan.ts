// Splits input shards among ranks: every rank computes the same assignment from the same list, with no
// coordination; shards are balanced by size (largest first onto the least loaded rank).
import type { Rank } from './ranks.js';

export interface PlannedShard {
  name: string;
  /** What ranks agree on the shard by, whatever the spelling of its path (default: `name`; see ShardRef). */
  stableName?: string;
  /** Bytes; shards without a size count as the mean of the known sizes (or 1 when none is known). */
  size?: number;
}

/**
 * All ranks' shares of `shards`: each shard goes to exactly one rank. The result does not depend on the
 * order of `shards` (names decide ties), so independently started workers agree. Each share is in name order.
 */
export function assignShards<T extends PlannedShard>(shards: T[], worldSize: number): T[][] {
  const known = shards.map((shard) => shard.size).filter((size): size is number => size !== undefined);
  const fallback = known.length ? known.reduce((sum, size) => sum + size, 0) / known.length : 1;
  const weight = (shard: T) => shard.size ?? fallback;
  const order = [...shards].sort((a, b) => weight(b) - weight(a) || byName(a, b));
  const shares: T[][] = Array.from({ length: worldSize }, () => []);
  const loads = new Array<number>(worldSize).fill(0);
  for (const shard of order) {
    let lightest = 0;
    for (let rank = 1; rank < worldSize; rank += 1) if (loads[rank] < loads[lightest]) lightest = rank;
    shares[lightest].push(shard);
    loads[lightest] += weight(shard);
  }
  return shares.map((share) => share.sort(byName));
}

/** This rank's share of `shards` (see assignShards). */
export function planShards<T extends PlannedShard>(shards: T[], { rank, worldSize }: Rank): T[] {
  return assignShards(shards, worldSize)[rank];
}

function byName(a: PlannedShard, b: PlannedShard): number {
  const first = a.stableName ?? a.name;
  const second = b.stableName ?? b.name;
  return first < second ? -1 : first > second ? 1 : 0;
}
