// Merges the memmaps of `--rank` outputs into one OUT/memmap.json: every rank's parts listed in rank order under
// `rank-NNNNN/` (the files stay where they are), after checking that the ranks agree on dtype, seq_len, tokenizer.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MegadocsError, messageOf } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { MEMMAP_INDEX, type MemmapIndex } from './memmap.js';

const SAME_KEYS = ['format', 'version', 'dtype', 'seq_len', 'tokenizer', 'eos_id', 'bos_id'] as const;

export async function mergeMemmapRanks(
  dir: string,
  rankDirs: readonly string[],
): Promise<{ parts: number; sequences: number; index: string; alreadyComplete: boolean }> {
  let merged: MemmapIndex | undefined;
  for (const rankDir of rankDirs) {
    const file = path.join(dir, rankDir, MEMMAP_INDEX);
    let index: MemmapIndex;
    try {
      index = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new MegadocsError(
        'BAD_INPUT',
        `this rank has not finished: no readable ${MEMMAP_INDEX} (${messageOf(error)})`,
        {
          where: file,
          hint: `Rerun ${rankDir} (the same command with its rank) until it completes, then merge again`,
        },
      );
    }
    const differs = merged && SAME_KEYS.find((key) => index[key] !== merged![key]);
    if (differs) {
      throw new MegadocsError(
        'BAD_INPUT',
        `${differs} is ${JSON.stringify(index[differs])}, rank 0 has ${JSON.stringify(merged![differs])}`,
        {
          where: file,
          hint: 'Merge ranks written by the same command and options',
        },
      );
    }
    const files = index.files.map((part) => ({
      ...part,
      path: `${rankDir}/${part.path}`,
      spans: part.spans && `${rankDir}/${part.spans}`,
    }));
    merged = merged
      ? {
          ...merged,
          sequences: merged.sequences + index.sequences,
          tokens: merged.tokens + index.tokens,
          files: [...merged.files, ...files],
        }
      : { ...index, files };
  }
  const indexPath = path.join(dir, MEMMAP_INDEX);
  const text = `${JSON.stringify(merged, null, 2)}\n`;
  const alreadyComplete = (await readFile(indexPath, 'utf8').catch(() => undefined)) === text;
  if (!alreadyComplete) await writeFileAtomic(indexPath, text);
  return { parts: merged!.files.length, sequences: merged!.sequences, index: indexPath, alreadyComplete };
}
