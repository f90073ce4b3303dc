// Shards whose body is compressed while they fill, then landed as ONE frame (the header as Raw blocks, then the
// body's blocks): byte for byte the raw shards FORMATS.md describes, with a header of several Raw blocks and with
// a body of a few bytes, read by fzstd, the zstd CLI and python; and two writers filling at the same time.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import _ from 'highland';
import { afterAll, describe, expect, it } from 'vitest';
import {
  parseZstdFrameHeader,
  readFrameContentSize,
  ZSTD_BLOCK_MAX_BYTES,
  zstdDecompress,
  zstdFrameLengths,
} from '../lib/codecs/zstd.js';
import { jsonlSink } from '../lib/sinks/jsonl.js';
import { MdsWriter } from '../lib/sinks/mds.js';
import { encodeShard, type MdsShardEntry, pythonJson } from '../lib/sinks/mds-format.js';
import { readMdsIndex } from '../lib/sinks/mds-reader.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-compressed-body-'));
  dirs.push(dir);
  return dir;
}

const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');
const hasCommand = (command: string, args: string[]) =>
  spawnSync(command, args, { stdio: 'ignore' }).status === 0;
const HAS_ZSTD_CLI = hasCommand('zstd', ['--version']);
/** Pythons with the decompressors MDS readers use: `zstd` (streaming's) and `zstandard`, where installed. */
const PYTHON_MODULES = [
  ['zstd', 'zstd.decompress(data)'],
  ['zstandard', 'zstandard.ZstdDecompressor().decompress(data)'],
].flatMap(([module, call]) => {
  const python = ['python3', '/usr/bin/python3'].find((candidate) =>
    hasCommand(candidate, ['-c', `import ${module}`]),
  );
  return python ? [{ python, module: module!, call: call! }] : [];
});

/** The raw shards `rows` make (built here from FORMATS.md, not by the writer) given each shard's index entry. */
function expectedRawShards(rows: Array<{ word: string }>, entries: MdsShardEntry[]): Buffer[] {
  let next = 0;
  return entries.map((entry) => {
    const samples = rows.slice(next, next + entry.samples).map(({ word }) => {
      const bytes = Buffer.from(word, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return Buffer.concat([length, bytes]);
    });
    next += entry.samples;
    const { raw_data, samples: _count, zip_data, ...config } = entry;
    return encodeShard(samples, Buffer.from(pythonJson(config)));
  });
}

/** Writes `rows` with zstd and checks every shard: one frame, its declared size, the raw bytes exactly. */
async function writeAndCheck(rows: Array<{ word: string }>, sizeLimit: number) {
  const dir = await tempDir();
  const writer = await MdsWriter.open({ dir, columns: { word: 'str' }, compression: 'zstd:4', sizeLimit });
  for (const row of rows) await writer.write(row);
  await writer.finish();
  const index = await readMdsIndex(dir);
  const raw = expectedRawShards(rows, index.shards);
  const stored = await Promise.all(
    index.shards.map((entry) => readFile(path.join(dir, entry.zip_data!.basename))),
  );
  expect(index.shards.reduce((sum, entry) => sum + entry.samples, 0)).toBe(rows.length);
  for (const [at, file] of stored.entries()) {
    const entry = index.shards[at]!;
    expect(entry.raw_data).toEqual({
      basename: `shard.${String(at).padStart(5, '0')}.mds`,
      bytes: raw[at]!.length,
      hashes: { sha1: sha1(raw[at]!) },
    });
    expect(entry.zip_data).toEqual({
      basename: `${entry.raw_data.basename}.zstd`,
      bytes: file.length,
      hashes: { sha1: sha1(file) },
    });
    expect(zstdFrameLengths(file)).toEqual([file.length]);
    expect(readFrameContentSize(file)).toBe(raw[at]!.length);
    expect(zstdDecompress(file).equals(raw[at]!)).toBe(true);
  }
  expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  return { dir, index, stored, raw };
}

describe('compressed while filling, landed as one frame', () => {
  it('shards whose header (sample table) takes several 128 KiB Raw blocks decode to the raw shards exactly', async () => {
    const words = (await readFile(path.join(DATA, 'war-and-peace.txt'), 'latin1'))
      .split(/\s+/)
      .slice(0, 250_000);
    const { dir, index, stored, raw } = await writeAndCheck(
      words.map((word) => ({ word })),
      1_000_000,
    );
    expect(index.shards.length).toBeGreaterThan(2);
    for (const [at, file] of stored.slice(0, -1).entries()) {
      const headerBytes = raw[at]!.readUInt32LE(4); // offsets[0]: where the first sample starts
      expect(headerBytes).toBeGreaterThan(2 * ZSTD_BLOCK_MAX_BYTES);
      const firstBlock = file.readUIntLE(parseZstdFrameHeader(file).headerSize, 3);
      expect(firstBlock).toBe(ZSTD_BLOCK_MAX_BYTES << 3); // Raw, not last, 128 KiB
    }
    if (HAS_ZSTD_CLI) {
      for (const [at, file] of stored.entries()) {
        const out = execFileSync('zstd', ['-d', '-c', '-q'], { input: file, maxBuffer: 1 << 26 });
        expect(out.equals(raw[at]!)).toBe(true);
      }
    }
    for (const { python, module, call } of PYTHON_MODULES) {
      const script = `import sys, os, json, hashlib, ${module}
index = json.load(open(os.path.join(sys.argv[1], 'index.json')))
for shard in index['shards']:
    data = open(os.path.join(sys.argv[1], shard['zip_data']['basename']), 'rb').read()
    print(hashlib.sha1(${call}).hexdigest())`;
      const result = spawnSync(python, ['-c', script, dir], { encoding: 'utf8' });
      expect(result.stderr, module).toBe('');
      expect(result.stdout.trim().split('\n')).toEqual(
        index.shards.map((entry) => entry.raw_data.hashes.sha1),
      );
    }
  });

  it('a shard whose body is a few bytes', async () => {
    const { stored, raw } = await writeAndCheck([{ word: 'x' }], 1 << 20);
    expect(raw[0]!.length - raw[0]!.readUInt32LE(4)).toBe(5); // one sample: a u32 length and one byte
    expect(stored).toHaveLength(1);
  });

  it('a jsonl.zst shard of one tiny record: one frame declaring the 3 raw bytes', async () => {
    const dir = await tempDir();
    await jsonlSink({ dir, compression: 'zstd', shardSize: 1000 })(_([{}]));
    const stored = await readFile(path.join(dir, 'shard.00000.jsonl.zst'));
    expect(zstdFrameLengths(stored)).toEqual([stored.length]);
    expect(readFrameContentSize(stored)).toBe(3);
    expect(zstdDecompress(stored).toString()).toBe('{}\n');
  });

  it('two writers filling compressed shards at the same time both finish (each frame on its own worker)', async () => {
    const words = (await readFile(path.join(DATA, 'war-and-peace.txt'), 'latin1'))
      .split(/\s+/)
      .slice(0, 60_000);
    const dirs = [await tempDir(), await tempDir()];
    const writers = await Promise.all(
      dirs.map((dir) =>
        MdsWriter.open({ dir, columns: { word: 'str' }, compression: 'zstd', sizeLimit: 150_000 }),
      ),
    );
    for (const word of words) {
      await writers[0]!.write({ word });
      await writers[1]!.write({ word: word.toUpperCase() });
    }
    const summaries = await Promise.all(writers.map((writer) => writer.finish()));
    for (const [at, dir] of dirs.entries()) {
      expect(summaries[at]!.shards).toBeGreaterThan(2);
      const index = await readMdsIndex(dir);
      for (const entry of index.shards) {
        const raw = zstdDecompress(await readFile(path.join(dir, entry.zip_data!.basename)));
        expect(sha1(raw)).toBe(entry.raw_data.hashes.sha1);
      }
    }
  }, 60_000);
});
