// Joins the per-rank datasets `OUT/rank-NNNNN/` into one: MDS shard entries concatenated in rank order into
// `OUT/index.json`, basenames prefixed with `rank-NNNNN/` (FORMATS.md); Megatron pairs into one pair; memmap
// parts listed in one `OUT/memmap.json`; and `OUT/megadocs.json` for the merged dataset (rank 0's options).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MegadocsError, messageOf } from './errors.js';
import { writeFileAtomic } from './sinks/atomic.js';
import { megatronPrefixIn } from './sinks/megatron-format.js';
import { mergeMegatronRanks } from './sinks/megatron-merge.js';
import { MEMMAP_INDEX } from './sinks/memmap.js';
import { mergeMemmapRanks } from './sinks/memmap-merge.js';

export interface MergeSummary {
  ranks: number;
  /** `mds`, `megatron` or `memmap`: what rank 0 holds. */
  format: 'mds' | 'megatron' | 'memmap';
  /** Shards (MDS), parts (memmap) or 1 (the merged Megatron pair). */
  shards: number;
  /** Samples, sequences, or Megatron entries. */
  samples: number;
  /** The written index. */
  index: string;
  /** The index was already there with these very contents: nothing was written. */
  alreadyComplete?: true;
}

interface ShardFile {
  basename: string;
  bytes: number;
  hashes: Record<string, string>;
}

interface ShardEntry {
  raw_data: ShardFile;
  zip_data: ShardFile | null;
  samples: number;
  [key: string]: unknown;
}

const RANK_DIR = /^rank-(\d{5,})$/;

/** The name of rank `rank`'s output folder: `rank-00007`. */
export function rankDirName(rank: number): string {
  return `rank-${String(rank).padStart(5, '0')}`;
}

/**
 * Writes `dir/index.json` over all `dir/rank-NNNNN/` datasets. Every rank from 0 to `worldSize - 1` (or, without
 * it, to the highest rank folder present) must be complete; a rank folder beyond `worldSize` is an error too.
 */
export async function mergeRankIndexes(
  dir: string,
  options: { worldSize?: number } = {},
): Promise<MergeSummary> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    throw new MegadocsError('IO', `cannot read the output directory (${messageOf(error)})`, {
      where: dir,
      hint: 'Pass the --out directory the ranks wrote to',
    });
  });
  const ranks = entries
    .filter((entry) => entry.isDirectory() && RANK_DIR.test(entry.name))
    .map((entry) => Number(RANK_DIR.exec(entry.name)?.[1]))
    .sort((a, b) => a - b);
  if (ranks.length === 0) {
    throw new MegadocsError('BAD_INPUT', 'no rank-NNNNN/ folders to merge', {
      where: dir,
      hint: 'Run the workers with --rank/--world-size (or under Slurm/Kubernetes) and --out pointing here first',
    });
  }
  const expected = options.worldSize ?? ranks.at(-1)! + 1;
  const extra = ranks.filter((rank) => rank >= expected);
  if (extra.length) {
    throw new MegadocsError(
      'BAD_INPUT',
      `${extra.map(rankDirName).join(', ')} lie beyond --world-size ${expected}`,
      {
        where: dir,
        hint: 'Pass the world size the workers ran with, or remove folders left from another run',
      },
    );
  }
  const missing = Array.from({ length: expected }, (_, rank) => rank).filter((rank) => !ranks.includes(rank));
  if (missing.length) {
    throw new MegadocsError(
      'BAD_INPUT',
      `ranks ${missing.map(rankDirName).join(', ')} have no output folder`,
      {
        where: dir,
        hint: 'Run (or rerun) those ranks before merging',
      },
    );
  }
  const rankDirs = ranks.map(rankDirName);
  const first = await fs.readdir(path.join(dir, rankDirs[0]!));
  const prefix = megatronPrefixIn(first);
  let merged: Omit<MergeSummary, 'ranks'>;
  if (prefix !== undefined) {
    const pair = await mergeMegatronRanks(dir, rankDirs, prefix);
    merged = { format: 'megatron', shards: 1, samples: pair.entries, index: pair.index, ...complete(pair) };
  } else if (first.includes(MEMMAP_INDEX)) {
    const memmap = await mergeMemmapRanks(dir, rankDirs);
    merged = {
      format: 'memmap',
      shards: memmap.parts,
      samples: memmap.sequences,
      index: memmap.index,
      ...complete(memmap),
    };
  } else merged = await mergeMds(dir, rankDirs);
  const manifestThere = await writeMergedManifest(dir, rankDirs, merged.format);
  if (!manifestThere) delete merged.alreadyComplete;
  return { ranks: ranks.length, ...merged };
}

const complete = (written: { alreadyComplete: boolean }) =>
  written.alreadyComplete ? { alreadyComplete: true as const } : {};

async function mergeMds(dir: string, rankDirs: readonly string[]): Promise<Omit<MergeSummary, 'ranks'>> {
  const shards: ShardEntry[] = [];
  for (const rankDir of rankDirs) shards.push(...(await rankShards(dir, rankDir)));
  const index = path.join(dir, 'index.json');
  const text = `${JSON.stringify({ shards, version: 2 })}\n`;
  // A rerun over the same ranks finds the same index: nothing is written (a requeued job changes nothing).
  const alreadyComplete = (await fs.readFile(index, 'utf8').catch(() => undefined)) === text;
  if (!alreadyComplete) await writeFileAtomic(index, text);
  return {
    format: 'mds',
    shards: shards.length,
    samples: shards.reduce((sum, shard) => sum + shard.samples, 0),
    index,
    ...complete({ alreadyComplete }),
  };
}

/**
 * OUT/megadocs.json for the merged dataset: rank 0's options (seqLen, tokenizer: what readers such as
 * examples/pytorch_feed.py and inspect --decode take from it), the format and the ranks. Returns whether it was
 * already there with this content.
 */
async function writeMergedManifest(
  dir: string,
  rankDirs: readonly string[],
  format: string,
): Promise<boolean> {
  const rankManifest = path.join(dir, rankDirs[0]!, 'megadocs.json');
  const options = await fs
    .readFile(rankManifest, 'utf8')
    .then((text) => (JSON.parse(text) as { options?: Record<string, unknown> }).options)
    .catch(() => undefined);
  const manifest = {
    command: 'merge',
    status: 'complete',
    format,
    ranks: rankDirs,
    options: options ?? null,
  };
  const file = path.join(dir, 'megadocs.json');
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  if ((await fs.readFile(file, 'utf8').catch(() => undefined)) === text) return true;
  await writeFileAtomic(file, text);
  return false;
}

/** One rank's shard entries with basenames prefixed by the rank's folder; checks the shard files exist. */
async function rankShards(dir: string, rankDir: string): Promise<ShardEntry[]> {
  const file = path.join(dir, rankDir, 'index.json');
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) {
    throw new MegadocsError('BAD_INPUT', 'this rank has not finished: it has no index.json', {
      where: file,
      hint: `Rerun ${rankDir} (the same command with its rank) until it completes, then merge again`,
    });
  }
  let index: { shards?: unknown; version?: unknown };
  try {
    index = JSON.parse(text);
  } catch (error) {
    throw new MegadocsError('CORRUPT', `not valid JSON (${messageOf(error)})`, {
      where: file,
      hint: `Rerun ${rankDir}`,
    });
  }
  if (index.version !== 2 || !Array.isArray(index.shards)) {
    throw new MegadocsError('CORRUPT', 'not an MDS index (expected {"shards": [...], "version": 2})', {
      where: file,
      hint: `Rerun ${rankDir}`,
    });
  }
  const merged: ShardEntry[] = [];
  for (const [position, shard] of (index.shards as ShardEntry[]).entries()) {
    if (typeof shard?.raw_data?.basename !== 'string') {
      throw new MegadocsError('CORRUPT', `shard ${position} has no raw_data.basename`, {
        where: file,
        hint: `Rerun ${rankDir}`,
      });
    }
    const stored = shard.zip_data ?? shard.raw_data;
    await fs.stat(path.join(dir, rankDir, stored.basename)).catch(() => {
      throw new MegadocsError('BAD_INPUT', `shard file ${stored.basename} listed in the index is missing`, {
        where: file,
        hint: `Rerun ${rankDir}, or restore the file`,
      });
    });
    merged.push({
      ...shard,
      raw_data: { ...shard.raw_data, basename: `${rankDir}/${shard.raw_data.basename}` },
      zip_data: shard.zip_data && { ...shard.zip_data, basename: `${rankDir}/${shard.zip_data.basename}` },
    });
  }
  return merged;
}
