// The jsonl sink on real Wikipedia records: shards rolled at the raw size, one zstd frame each that declares
// its size, index.json written last with matching counts and hashes, and read back by our own source reader.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import _ from 'highland';
import { afterAll, describe, expect, it } from 'vitest';
import { readFrameContentSize, zstdDecompress, zstdFrameLengths } from '../lib/codecs/zstd.js';
import { jsonlSink } from '../lib/sinks/jsonl.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { toAsyncIterable } from '../lib/stream.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-jsonl-'));
  dirs.push(dir);
  return dir;
}

async function wikipedia(count: number): Promise<Array<{ id: string; text: string }>> {
  const lines = (await readFile(path.join(DATA, 'wikipedia-2349.jsonl'), 'utf8')).split('\n').slice(0, count);
  return lines.map((line) => {
    const { id, text } = JSON.parse(line);
    return { id: String(id), text };
  });
}

async function readBack(dir: string): Promise<Array<{ id: string; text: string }>> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
  const shards = await expandInputs(
    index.shards.map((shard: { basename: string }) => path.join(dir, shard.basename)),
  );
  const docs = [];
  for await (const doc of toAsyncIterable(readDocs(shards))) docs.push({ id: doc.id, text: doc.text });
  return docs;
}

describe('jsonlSink', () => {
  it.each(['zstd', 'none'])(
    'writes rolled shards (%s) that our source reader reads back in order',
    async (compression) => {
      const dir = await tempDir();
      const records = await wikipedia(400);
      const shardSize = 150_000;
      const landed: string[] = [];
      const summary = await jsonlSink({
        dir,
        compression,
        shardSize,
        onShard: (info) => landed.push(info.basename),
      })(_(records));
      const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
      expect(Object.keys(index).sort()).toEqual(['format', 'shards', 'version']);
      expect(index).toMatchObject({ version: 1, format: 'jsonl' });
      expect(index.shards.map((shard: { basename: string }) => shard.basename)).toEqual(landed);
      expect(summary.shards).toBe(landed.length);
      expect(summary.shards).toBeGreaterThan(2);
      expect(summary.records).toBe(records.length);
      const extension = compression === 'zstd' ? '.jsonl.zst' : '.jsonl';
      expect((await readdir(dir)).sort()).toEqual(['index.json', ...landed].sort());
      let first = 0;
      for (const shard of index.shards) {
        expect(Object.keys(shard).sort()).toEqual(['basename', 'bytes', 'raw_bytes', 'records', 'sha1']);
        expect(shard.basename.endsWith(extension)).toBe(true);
        const stored = await readFile(path.join(dir, shard.basename));
        expect(stored.length).toBe(shard.bytes);
        expect(createHash('sha1').update(stored).digest('hex')).toBe(shard.sha1);
        const raw = compression === 'zstd' ? zstdDecompress(stored) : stored;
        if (compression === 'zstd') {
          expect(zstdFrameLengths(stored)).toEqual([stored.length]);
          expect(readFrameContentSize(stored)).toBe(raw.length);
        }
        expect(raw.length).toBe(shard.raw_bytes);
        expect(raw.length).toBeLessThanOrEqual(shardSize);
        const lines = raw.toString('utf8').split('\n');
        expect(lines.pop()).toBe('');
        expect(lines.length).toBe(shard.records);
        first += shard.records;
        if (first < records.length) {
          const next = Buffer.byteLength(`${JSON.stringify(records[first])}\n`);
          expect(raw.length + next).toBeGreaterThan(shardSize);
        }
      }
      expect(await readBack(dir)).toEqual(records);
    },
  );

  it('compresses with the zstd engine asked for', async () => {
    const dir = await tempDir();
    const records = await wikipedia(100);
    await jsonlSink({ dir, compression: 'zstd', zstdEngine: 'zstd-codec', shardSize: 1 << 26 })(_(records));
    expect(await readBack(dir)).toEqual(records);
    await expect(
      jsonlSink({
        dir: await tempDir(),
        compression: 'zstd',
        zstdEngine: 'lz4' as 'native',
        shardSize: 1 << 26,
      })(_(records)),
    ).rejects.toThrow(/zstdEngine: unknown zstd engine "lz4"/);
  });

  it('a failing input leaves no index.json and no temporary file', async () => {
    const dir = await tempDir();
    const records = await wikipedia(200);
    const failing = _(records).map((record) => {
      if (record === records[150]) throw new Error('generation failed');
      return record;
    });
    await expect(jsonlSink({ dir, compression: 'zstd', shardSize: 100_000 })(failing)).rejects.toThrow(
      'generation failed',
    );
    const files = await readdir(dir);
    expect(files).not.toContain('index.json');
    expect(files.length).toBeGreaterThan(0);
    expect(files.every((name) => /^shard\.\d{5}\.jsonl\.zst$/.test(name))).toBe(true);
  });
});
