// What `feed` reads, whatever the format: a dataset as units (MDS shards, memmap parts, runs of Megatron entries)
// that each load into a count of token arrays, so the storage order and the windowed shuffle work on all three.
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { MegadocsError } from './errors.js';
import { readMdsIndex, readMdsShard } from './sinks/mds-reader.js';
import { megatronFiles, megatronPrefixIn, parseMegatronIndex } from './sinks/megatron-format.js';
import { MEMMAP_INDEX, type MemmapIndex } from './sinks/memmap.js';

export type FeedTokens = ArrayLike<number> & ArrayBufferView;

/** One unit loaded: `count` token arrays, read by position. */
export interface LoadedUnit {
  name: string;
  count: number;
  tokens(at: number): FeedTokens;
}

export interface FeedUnit {
  load(): Promise<LoadedUnit>;
}

/** Megatron entries per unit: a window of units is then a bounded read of the .bin. */
const MEGATRON_ENTRIES_PER_UNIT = 4096;

function mdsUnits(dir: string): Promise<FeedUnit[]> {
  return readMdsIndex(dir).then(({ shards }) =>
    shards.map((entry) => ({
      load: async () => {
        const shard = await readMdsShard(dir, entry);
        return {
          name: shard.name,
          count: shard.count,
          tokens: (at: number) => {
            const tokens = shard.sample(at).tokens;
            if (!ArrayBuffer.isView(tokens)) {
              throw new MegadocsError('BAD_INPUT', 'the dataset has no ndarray column "tokens"', {
                where: shard.name,
                hint: 'feed reads datasets written by megadocs pack/run (MDS with a tokens column)',
              });
            }
            return tokens as FeedTokens;
          },
        };
      },
    })),
  );
}

function memmapUnits(dir: string, index: MemmapIndex): FeedUnit[] {
  return index.files.map((file) => ({
    load: async () => {
      const data = await readFile(path.join(dir, file.path));
      const ids =
        index.dtype === 'uint16'
          ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
          : new Uint32Array(data.buffer, data.byteOffset, data.length / 4);
      return {
        name: path.join(dir, file.path),
        count: file.sequences,
        tokens: (at: number) => ids.subarray(at * index.seq_len, (at + 1) * index.seq_len),
      };
    },
  }));
}

async function megatronUnits(dir: string, prefix: string): Promise<FeedUnit[]> {
  const names = megatronFiles(prefix);
  const idxFile = path.join(dir, names.idx);
  let index: ReturnType<typeof parseMegatronIndex>;
  try {
    index = parseMegatronIndex(await readFile(idxFile));
  } catch (error) {
    throw new MegadocsError('CORRUPT', `not a Megatron index (${(error as Error).message})`, {
      where: idxFile,
      hint: 'Run megadocs inspect on the directory, and rewrite the dataset',
    });
  }
  const { lengths, pointers, itemBytes } = index;
  const units: FeedUnit[] = [];
  for (let first = 0; first < lengths.length; first += MEGATRON_ENTRIES_PER_UNIT) {
    const last = Math.min(first + MEGATRON_ENTRIES_PER_UNIT, lengths.length) - 1;
    units.push({
      load: async () => {
        const start = Number(pointers[first]);
        const end = Number(pointers[last]) + lengths[last]! * itemBytes;
        const handle = await open(path.join(dir, names.bin));
        const bytes = Buffer.alloc(end - start);
        try {
          await handle.read(bytes, 0, bytes.length, start);
        } finally {
          await handle.close();
        }
        const View = itemBytes === 2 ? Uint16Array : Int32Array;
        return {
          name: `${path.join(dir, names.bin)} entries ${first}-${last}`,
          count: last - first + 1,
          tokens: (at: number) =>
            new View(
              bytes.buffer,
              bytes.byteOffset + Number(pointers[first + at]) - start,
              lengths[first + at]!,
            ),
        };
      },
    });
  }
  return units;
}

/** The units of the dataset in `dir`: a Megatron pair (.idx), a memmap (memmap.json), else MDS (index.json). */
export async function feedUnits(dir: string): Promise<FeedUnit[]> {
  const files = await readdir(dir).catch(() => [] as string[]);
  const prefix = megatronPrefixIn(files);
  if (prefix !== undefined) return megatronUnits(dir, prefix);
  if (files.includes(MEMMAP_INDEX)) {
    const index = JSON.parse(await readFile(path.join(dir, MEMMAP_INDEX), 'utf8')) as MemmapIndex;
    return memmapUnits(dir, index);
  }
  return mdsUnits(dir);
}
