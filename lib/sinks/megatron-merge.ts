// Merges the Megatron pairs of `--rank` outputs into one OUT/PREFIX.bin + .idx, as Megatron's own builder merges
// indexes: the .bin files concatenated in rank order, the entry lengths appended; the .bin lands first, the .idx last.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MegadocsError, messageOf } from '../errors.js';
import { AtomicFiles } from './atomic.js';
import {
  type MegatronDtype,
  megatronFiles,
  megatronIndexPieces,
  parseMegatronIndex,
} from './megatron-format.js';

async function* concatenated(files: readonly string[]): AsyncGenerator<Uint8Array> {
  for (const file of files) yield* createReadStream(file) as AsyncIterable<Buffer>;
}

function corrupt(file: string, message: string, rankDir: string): MegadocsError {
  return new MegadocsError('CORRUPT', message, { where: file, hint: `Rerun ${rankDir}, then merge again` });
}

/** Writes DIR/PREFIX.bin and DIR/PREFIX.idx over the ranks' pairs; returns the entry count and whether it was there. */
export async function mergeMegatronRanks(
  dir: string,
  rankDirs: readonly string[],
  prefix: string,
): Promise<{ entries: number; index: string; alreadyComplete: boolean }> {
  const names = megatronFiles(prefix);
  const lengths: Int32Array[] = [];
  const bins: string[] = [];
  let dtype: string | undefined;
  let binBytes = 0;
  for (const rankDir of rankDirs) {
    const idxFile = path.join(dir, rankDir, names.idx);
    const idx = await readFile(idxFile).catch((error) => {
      throw new MegadocsError(
        'BAD_INPUT',
        `this rank has not finished: no ${names.idx} (${messageOf(error)})`,
        {
          where: idxFile,
          hint: `Rerun ${rankDir} (the same command with its rank) until it completes, then merge again`,
        },
      );
    });
    let parsed: ReturnType<typeof parseMegatronIndex>;
    try {
      parsed = parseMegatronIndex(idx);
    } catch (error) {
      throw corrupt(idxFile, messageOf(error), rankDir);
    }
    if (dtype !== undefined && parsed.dtype !== dtype)
      throw corrupt(idxFile, `holds ${parsed.dtype} tokens, the ranks before it ${dtype}`, rankDir);
    dtype = parsed.dtype;
    const binFile = path.join(dir, rankDir, names.bin);
    const expected = parsed.lengths.reduce((sum, length) => sum + length * parsed.itemBytes, 0);
    const size = (await stat(binFile).catch(() => undefined))?.size;
    if (size !== expected)
      throw corrupt(binFile, `has ${size ?? 'no'} bytes, its .idx covers ${expected}`, rankDir);
    lengths.push(parsed.lengths);
    bins.push(binFile);
    binBytes += size;
  }
  const all = new Int32Array(lengths.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of lengths) {
    all.set(part, at);
    at += part.length;
  }
  const idx = Buffer.concat([...megatronIndexPieces(all, dtype as MegatronDtype)]);
  const idxPath = path.join(dir, names.idx);
  const binPath = path.join(dir, names.bin);
  const existing = await readFile(idxPath).catch(() => undefined);
  const binThere = (await stat(binPath).catch(() => undefined))?.size === binBytes;
  if (existing?.equals(idx) && binThere)
    return { entries: all.length, index: idxPath, alreadyComplete: true };
  const files = new AtomicFiles();
  await files.write(binPath, concatenated(bins));
  await files.write(idxPath, idx);
  return { entries: all.length, index: idxPath, alreadyComplete: false };
}
