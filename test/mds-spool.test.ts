// The MDS writer with shards that do not fit comfortably in memory: a 70 MiB raw shard spooled to disk and landed as
// ONE zstd frame with its size and hashes, and samples smaller than, across and larger than the 1 MiB spool buffer.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFrameContentSize, zstdDecompress, zstdFrameLengths } from '../lib/codecs/zstd.js';
import { MdsWriter } from '../lib/sinks/mds.js';
import { readShardLayout } from '../lib/sinks/mds-format.js';
import { iterateMdsSamples, readMdsIndex } from '../lib/sinks/mds-reader.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-mds-spool-'));
  dirs.push(dir);
  return dir;
}

const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Token-like ids: the bytes of war-and-peace as uint32 words, cut into `count` sequences of 2048. */
async function realTokens(count: number): Promise<Uint32Array[]> {
  const text = await readFile(path.join(DATA, 'war-and-peace.txt'));
  const words = new Uint32Array(text.buffer, text.byteOffset, Math.floor(text.length / 4));
  return Array.from({ length: count }, (_, at) =>
    words.slice(at * 2048, (at + 1) * 2048).map((word) => word % 200_000),
  );
}

describe('a shard bigger than 64 MiB', () => {
  it('is spooled and landed as ONE frame declaring its raw size, hashes of both files, every sample intact', async () => {
    const dir = await tempDir();
    const base = await realTokens(300);
    const count = 9_000; // 9000 x (4 + 3 + 8192 + 4) bytes: about 70 MiB raw
    const written = createHash('sha1');
    const shards: number[] = [];
    const writer = await MdsWriter.open({
      dir,
      columns: { tokens: 'ndarray:uint32' },
      compression: 'zstd:1',
      sizeLimit: 2 ** 27,
      hashes: ['sha1', 'md5'],
      onShard: (info) => shards.push(info.rawBytes),
    });
    for (let at = 0; at < count; at += 1) {
      // Copies past the first are shifted in id space, so the shard is not one long repeat.
      const copy = Math.floor(at / base.length);
      const tokens = base[at % base.length]!.map((id) => (id + copy * 9973) % 200_000);
      written.update(bytesOf(tokens));
      await writer.write({ tokens });
    }
    const summary = await writer.finish();
    expect(summary.shards).toBe(1);
    const entry = (await readMdsIndex(dir)).shards[0]!;
    expect(entry.raw_data.bytes).toBeGreaterThan(64 * 2 ** 20);
    expect(shards).toEqual([entry.raw_data.bytes]);
    const stored = await readFile(path.join(dir, entry.zip_data!.basename));
    expect(entry.zip_data!.bytes).toBe(stored.length);
    expect(entry.zip_data!.hashes).toEqual({
      md5: createHash('md5').update(stored).digest('hex'),
      sha1: sha1(stored),
    });
    expect(zstdFrameLengths(stored)).toEqual([stored.length]);
    expect(readFrameContentSize(stored)).toBe(entry.raw_data.bytes);
    const raw = zstdDecompress(stored);
    expect(raw.length).toBe(entry.raw_data.bytes);
    expect(entry.raw_data.hashes).toEqual({
      md5: createHash('md5').update(raw).digest('hex'),
      sha1: sha1(raw),
    });
    const { count: samples, offsets } = readShardLayout(raw, entry.raw_data.basename);
    expect(samples).toBe(count);
    const back = createHash('sha1');
    for (let at = 0; at < samples; at += 1) {
      const sample = raw.subarray(offsets[at]!, offsets[at + 1]!);
      expect(sample.readUInt32LE(0)).toBe(3 + 4 * 2048);
      back.update(sample.subarray(4 + 3));
    }
    expect(back.digest('hex')).toBe(written.digest('hex'));
    expect((await readdir(dir)).sort()).toEqual(['index.json', 'shard.00000.mds.zstd']);
  });
});

describe('samples around the spool buffer size (1 MiB)', () => {
  it.each(['none', 'zstd:2'])(
    'round-trips small, 1 MiB-crossing and multi-MiB samples in order (%s)',
    async (compression) => {
      const dir = await tempDir();
      const text = (await readFile(path.join(DATA, 'war-and-peace.txt'))).toString('latin1');
      const sizes = [1, 700_000, 600_000, 10, 3_000_000, 2 ** 20, 5, 2 ** 20 - 3];
      const rows = sizes.map((size, at) => ({ text: text.slice(at * 1000, at * 1000 + size) }));
      const writer = await MdsWriter.open({ dir, columns: { text: 'str' }, compression });
      for (const row of rows) await writer.write(row);
      await writer.finish();
      const back = [];
      for await (const sample of iterateMdsSamples(dir)) back.push(sample.text as string);
      expect(back.map((value) => value.length)).toEqual(sizes);
      expect(sha1(Buffer.from(back.join('')))).toBe(sha1(Buffer.from(rows.map((row) => row.text).join(''))));
    },
  );
});
