// The records a `megadocs generate` run wrote (its shard.NNNNN.jsonl.zst files, decompressed, in shard order),
// for the tests of what the generations hold.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { zstdDecompress } from '../../lib/codecs/zstd.js';

export interface GeneratedRecord {
  doc_id: string;
  model: string;
  text: string;
  [key: string]: unknown;
}

export async function generatedRecords(out: string): Promise<GeneratedRecord[]> {
  const names = (await readdir(out)).filter((name) => /^shard\.\d{5}\.jsonl\.zst$/.test(name)).sort();
  const text = Buffer.concat(
    await Promise.all(names.map(async (name) => zstdDecompress(await readFile(join(out, name))))),
  ).toString('utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as GeneratedRecord);
}
