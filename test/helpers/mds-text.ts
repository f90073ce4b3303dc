// A minimal MosaicML Streaming (MDS) dataset of one `str` column `text`, uncompressed, written and read per
// FORMATS.md; the merge tests use it to build per-rank datasets and to read a merged one back.
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Writes `texts` as `dir/shard.NNNNN.mds` files of `perShard` samples each, plus `dir/index.json`. */
export async function writeTextMds(dir: string, texts: string[], perShard: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const shards: Array<Record<string, unknown>> = [];
  for (let first = 0; first < texts.length; first += perShard) {
    const samples = texts.slice(first, first + perShard).map((text) => {
      const bytes = Buffer.from(text, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return Buffer.concat([length, bytes]);
    });
    const config = Buffer.from(JSON.stringify({ column_encodings: ['str'], column_names: ['text'] }));
    const header = Buffer.alloc(4 + 4 * (samples.length + 1));
    header.writeUInt32LE(samples.length, 0);
    let offset = header.length + config.length;
    for (const [index, sample] of samples.entries()) {
      header.writeUInt32LE(offset, 4 + 4 * index);
      offset += sample.length;
    }
    header.writeUInt32LE(offset, 4 + 4 * samples.length);
    const basename = `shard.${String(shards.length).padStart(5, '0')}.mds`;
    await fs.writeFile(path.join(dir, basename), Buffer.concat([header, config, ...samples]));
    shards.push({
      column_encodings: ['str'],
      column_names: ['text'],
      column_sizes: [null],
      compression: null,
      format: 'mds',
      hashes: [],
      raw_data: { basename, bytes: offset, hashes: {} },
      samples: samples.length,
      size_limit: 1 << 26,
      version: 2,
      zip_data: null,
    });
  }
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify({ shards, version: 2 }));
}

/** Every sample's text, in index order, following each entry's basename from the index's folder. */
export async function readTextMds(dir: string): Promise<string[]> {
  const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
  const texts: string[] = [];
  for (const shard of index.shards) {
    const file = await fs.readFile(path.join(dir, shard.raw_data.basename));
    const count = file.readUInt32LE(0);
    for (let index = 0; index < count; index += 1) {
      const start = file.readUInt32LE(4 + 4 * index);
      const length = file.readUInt32LE(start);
      texts.push(file.toString('utf8', start + 4, start + 4 + length));
    }
  }
  return texts;
}
