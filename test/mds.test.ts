// The MDS writer and reader against FORMATS.md byte by byte: shard layout parsed by hand, index.json keys,
// zstd frames that declare the raw size, rolling at size_limit, atomicity (abort and a real SIGKILL), python.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import _ from 'highland';
import { afterAll, describe, expect, it } from 'vitest';
import { readFrameContentSize, zstdDecompress, zstdFrameLengths } from '../lib/codecs/zstd.js';
import { MegadocsError } from '../lib/errors.js';
import { MdsWriter, mdsSink, parseCompression } from '../lib/sinks/mds.js';
import { iterateMdsSamples, readMdsIndex } from '../lib/sinks/mds-reader.js';
import type { Sequence } from '../lib/types.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-mds-'));
  dirs.push(dir);
  return dir;
}

const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Sequences of real token-like ids: the bytes of war-and-peace as uint32 words, cut into `seqLen` pieces. */
async function realSequences(count: number, seqLen: number, boundaries = false): Promise<Sequence[]> {
  const text = await readFile(path.join(DATA, 'war-and-peace.txt'));
  const words = new Uint32Array(text.buffer, text.byteOffset, Math.floor(text.length / 4));
  return Array.from({ length: count }, (_, at) => {
    const tokens = words.slice(at * seqLen, (at + 1) * seqLen).map((word) => word % 200_000);
    const sequence: Sequence = { tokens };
    if (boundaries) sequence.boundaries = Uint32Array.of(0, 7 + (at % 100), seqLen - 1);
    return sequence;
  });
}

const sink = (dir: string, extra: Partial<Parameters<typeof mdsSink>[0]> = {}) =>
  mdsSink({
    dir,
    dtype: 'uint32',
    boundaries: false,
    compression: 'none',
    shardSize: 1 << 26,
    hashes: ['sha1'],
    ...extra,
  });

const SHARD_KEYS = [
  'column_encodings',
  'column_names',
  'column_sizes',
  'compression',
  'format',
  'hashes',
  'raw_data',
  'samples',
  'size_limit',
  'version',
  'zip_data',
];

describe('MDS shard bytes (FORMATS.md)', () => {
  it('lays out N, absolute offsets, the config JSON and samples; 2048 uint32 start 0x05 0x00 0x08', async () => {
    const dir = await tempDir();
    const sequences = await realSequences(3, 2048, true);
    const summary = await sink(dir, { boundaries: true, hashes: ['sha256', 'sha1'] })(_(sequences));
    expect(summary).toMatchObject({ shards: 1, samples: 3, tokens: 3 * 2048 });

    expect((await readdir(dir)).sort()).toEqual(['index.json', 'shard.00000.mds']);
    const indexText = await readFile(path.join(dir, 'index.json'), 'utf8');
    const index = JSON.parse(indexText);
    expect(Object.keys(index).sort()).toEqual(['shards', 'version']);
    expect(index.version).toBe(2);
    const entry = index.shards[0];
    expect(Object.keys(entry).sort()).toEqual(SHARD_KEYS);
    expect(entry).toMatchObject({
      column_encodings: ['ndarray:uint32', 'ndarray:uint32'],
      column_names: ['boundaries', 'tokens'],
      column_sizes: [null, null],
      compression: null,
      format: 'mds',
      hashes: ['sha1', 'sha256'],
      samples: 3,
      size_limit: 1 << 26,
      version: 2,
      zip_data: null,
    });

    const file = await readFile(path.join(dir, 'shard.00000.mds'));
    expect(entry.raw_data).toEqual({
      basename: 'shard.00000.mds',
      bytes: file.length,
      hashes: { sha1: sha1(file), sha256: createHash('sha256').update(file).digest('hex') },
    });
    expect(file.readUInt32LE(0)).toBe(3);
    const offsets = [0, 1, 2, 3].map((at) => file.readUInt32LE(4 + 4 * at));
    const config = JSON.parse(file.subarray(20, offsets[0]).toString('utf8'));
    expect(config).toEqual({
      column_encodings: entry.column_encodings,
      column_names: entry.column_names,
      column_sizes: entry.column_sizes,
      compression: null,
      format: 'mds',
      hashes: ['sha1', 'sha256'],
      size_limit: 1 << 26,
      version: 2,
    });
    expect(offsets[3]).toBe(file.length);
    for (let at = 0; at < 3; at += 1) {
      const sample = file.subarray(offsets[at], offsets[at + 1]);
      const boundaryBytes = sample.readUInt32LE(0);
      const tokenBytes = sample.readUInt32LE(4);
      expect(8 + boundaryBytes + tokenBytes).toBe(sample.length);
      const boundaries = sample.subarray(8, 8 + boundaryBytes);
      expect([...boundaries.subarray(0, 2)]).toEqual([0x04, 3]); // 1-D, u8 shape, 3 values
      expect(
        bytesOf(
          new Uint32Array(
            boundaries.buffer.slice(boundaries.byteOffset + 2, boundaries.byteOffset + boundaryBytes),
          ),
        ),
      ).toEqual(bytesOf(sequences[at]!.boundaries!));
      const tokens = sample.subarray(8 + boundaryBytes);
      expect([...tokens.subarray(0, 3)]).toEqual([0x05, 0x00, 0x08]); // 1-D, u16 shape, 2048
      expect(Buffer.compare(tokens.subarray(3), bytesOf(sequences[at]!.tokens))).toBe(0);
    }
  });

  it('writes index.json the way python json.dumps(sort_keys=True) does', async () => {
    const dir = await tempDir();
    await sink(dir)(_(await realSequences(1, 16)));
    const text = await readFile(path.join(dir, 'index.json'), 'utf8');
    expect(
      text.startsWith('{"shards": [{"column_encodings": ["ndarray:uint32"], "column_names": ["tokens"]'),
    ).toBe(true);
    expect(text.endsWith('"zip_data": null}], "version": 2}')).toBe(true);
  });

  it('stores uint16 tokens with the u8 shape form and refuses ids that do not fit', async () => {
    const dir = await tempDir();
    await sink(dir, { dtype: 'uint16' })(_([{ tokens: Uint32Array.of(1, 65_535, 7) }]));
    const file = await readFile(path.join(dir, 'shard.00000.mds'));
    const start = file.readUInt32LE(4);
    expect(file.readUInt32LE(start)).toBe(2 + 6);
    expect([...file.subarray(start + 4, start + 6)]).toEqual([0x04, 3]);
    expect([
      ...new Uint16Array(file.buffer.slice(file.byteOffset + start + 6, file.byteOffset + start + 12)),
    ]).toEqual([1, 65_535, 7]);

    const bad = await sink(await tempDir(), { dtype: 'uint16' })(
      _([{ tokens: Uint32Array.of(1, 65_536) }]),
    ).catch((e) => e);
    expect(bad).toBeInstanceOf(MegadocsError);
    expect(bad.message).toMatch(/sample 0, column tokens: value 65536 at position 1 does not fit uint16/);
  });

  it('refuses an empty sequence and leaves no index.json', async () => {
    const dir = await tempDir();
    const error = await sink(dir)(_([{ tokens: Uint32Array.of(5) }, { tokens: new Uint32Array(0) }])).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(MegadocsError);
    expect(error.message).toMatch(/sample 1, column tokens: empty array/);
    expect(existsSync(path.join(dir, 'index.json'))).toBe(false);
  });

  it('boundaries always start with 0, even when the packer gave none', async () => {
    const dir = await tempDir();
    await sink(dir, { boundaries: true })(
      _([
        { tokens: Uint32Array.of(1, 2, 3) },
        { tokens: Uint32Array.of(4, 5, 6), boundaries: Uint32Array.of(2) },
      ]),
    );
    const samples = [];
    for await (const sample of iterateMdsSamples(dir)) samples.push([...(sample.boundaries as Uint32Array)]);
    expect(samples).toEqual([[0], [0, 2]]);
  });
});

describe('zstd shards', () => {
  it('writes only .mds.zstd files, each ONE frame declaring raw_data.bytes, hashes of both files', async () => {
    const dir = await tempDir();
    const sequences = await realSequences(60, 2048);
    const summary = await sink(dir, { compression: 'zstd:5', shardSize: 100_000 })(_(sequences));
    expect(summary.shards).toBeGreaterThan(3);
    const files = (await readdir(dir)).sort();
    expect(
      files.filter((name) => name !== 'index.json').every((name) => /^shard\.\d{5}\.mds\.zstd$/.test(name)),
    ).toBe(true);
    const index = await readMdsIndex(dir);
    expect(index.shards).toHaveLength(summary.shards);
    for (const entry of index.shards) {
      expect(entry.compression).toBe('zstd:5');
      const stored = await readFile(path.join(dir, entry.zip_data!.basename));
      expect(entry.zip_data).toEqual({
        basename: `${entry.raw_data.basename}.zstd`,
        bytes: stored.length,
        hashes: { sha1: sha1(stored) },
      });
      expect(zstdFrameLengths(stored)).toEqual([stored.length]);
      expect(readFrameContentSize(stored)).toBe(entry.raw_data.bytes);
      const raw = zstdDecompress(stored);
      expect(raw.length).toBe(entry.raw_data.bytes);
      expect(sha1(raw)).toBe(entry.raw_data.hashes.sha1);
    }
    expect(summary.storedBytes).toBeLessThan(summary.rawBytes);
  });

  it('compresses with the zstd engine asked for, and names the option when it is unknown', async () => {
    const dir = await tempDir();
    const sequences = await realSequences(20, 2048);
    const summary = await sink(dir, { compression: 'zstd:3', zstdEngine: 'zstd-codec' })(_(sequences));
    const [entry] = (await readMdsIndex(dir)).shards;
    const stored = await readFile(path.join(dir, entry!.zip_data!.basename));
    expect(sha1(zstdDecompress(stored))).toBe(entry!.raw_data.hashes.sha1);
    expect(summary.samples).toBe(20);
    const refused = await tempDir();
    await expect(
      sink(refused, { compression: 'zstd:3', zstdEngine: 'lz4' as 'native' })(_(sequences)),
    ).rejects.toThrow(/zstdEngine: unknown zstd engine "lz4"\. Use native or zstd-codec/);
    expect(await readdir(refused)).not.toContain('index.json');
  });
});

describe('rolling at size_limit', () => {
  it('closes a shard before a sample would push it past the limit; every sample reads back in order', async () => {
    const dir = await tempDir();
    const sequences = (await realSequences(200, 300)).map((sequence, at) => ({
      tokens: sequence.tokens.subarray(0, 1 + ((at * 37) % 300)),
    }));
    const sizeLimit = 20_000;
    const summary = await sink(dir, { shardSize: sizeLimit })(_(sequences));
    const index = await readMdsIndex(dir);
    let next = 0;
    for (const entry of index.shards) {
      expect(entry.raw_data.bytes).toBeLessThanOrEqual(sizeLimit);
      next += entry.samples;
      if (next < sequences.length) {
        // the first sample of the next shard did not fit: 4 (length) + 3 (ndarray header) + values + 4 (offset)
        const following = sequences[next]!.tokens.length;
        const shapeBytes = following < 256 ? 2 : 3;
        expect(entry.raw_data.bytes + 4 + shapeBytes + 4 * following + 4).toBeGreaterThan(sizeLimit);
      }
    }
    expect(summary.samples).toBe(sequences.length);
    const back: Buffer[] = [];
    for await (const sample of iterateMdsSamples(dir)) back.push(bytesOf(sample.tokens as Uint32Array));
    expect(sha1(Buffer.concat(back))).toBe(sha1(Buffer.concat(sequences.map((s) => bytesOf(s.tokens)))));
  });
});

describe('atomicity', () => {
  it('a failing input stream aborts: no index.json, no temporary file, landed shards are complete', async () => {
    const dir = await tempDir();
    const sequences = await realSequences(40, 2048);
    const failing = _(sequences).map((sequence) => {
      if (sequence === sequences[30]) throw new Error('upstream broke');
      return sequence;
    });
    await expect(sink(dir, { compression: 'zstd', shardSize: 50_000 })(failing)).rejects.toThrow(
      'upstream broke',
    );
    const files = await readdir(dir);
    expect(files).not.toContain('index.json');
    expect(files.filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(files.length).toBeGreaterThan(2);
    for (const name of files) {
      const stored = await readFile(path.join(dir, name));
      const raw = zstdDecompress(stored);
      expect(readFrameContentSize(stored)).toBe(raw.length);
      expect(raw.readUInt32LE(4 + 4 * raw.readUInt32LE(0))).toBe(raw.length);
    }
  });

  it('abort() on a writer removes nothing complete and writes no index', async () => {
    const dir = await tempDir();
    const writer = await MdsWriter.open({
      dir,
      columns: { text: 'str' },
      compression: 'none',
      sizeLimit: 200,
    });
    for (let at = 0; at < 20; at += 1) await writer.write({ text: `sample ${at} `.repeat(5) });
    await writer.abort();
    const files = await readdir(dir);
    expect(files).not.toContain('index.json');
    expect(files.every((name) => /^shard\.\d{5}\.mds$/.test(name))).toBe(true);
    await expect(writer.write({ text: 'late' })).rejects.toThrow(/after finish or abort/);
  });

  it('a process killed with SIGKILL mid-run leaves no index.json and no partial shard under a final name', async () => {
    const dir = await tempDir();
    const mdsModule = path.resolve(import.meta.dirname, '../lib/sinks/mds.ts');
    const script = `
      import { MdsWriter } from ${JSON.stringify(mdsModule)};
      const writer = await MdsWriter.open({ dir: ${JSON.stringify(dir)}, columns: { tokens: 'ndarray:uint32' }, compression: 'zstd:1', sizeLimit: 1 << 20 });
      const tokens = new Uint32Array(4096);
      for (let at = 0; ; at += 1) { tokens.fill(at % 50000); tokens[at % 4096] = at; await writer.write({ tokens }); }
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 30_000;
    while (
      (await readdir(dir)).filter((name) => name.endsWith('.zstd')).length < 3 &&
      Date.now() < deadline &&
      child.exitCode === null
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(child.exitCode).toBeNull(); // still writing, not crashed
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const files = await readdir(dir);
    expect(files).not.toContain('index.json');
    const shards = files.filter((name) => /^shard\.\d{5}\.mds\.zstd$/.test(name));
    expect(shards.length).toBeGreaterThanOrEqual(3);
    for (const name of shards) {
      const stored = await readFile(path.join(dir, name));
      expect(zstdFrameLengths(stored)).toEqual([stored.length]);
      const raw = zstdDecompress(stored);
      expect(readFrameContentSize(stored)).toBe(raw.length);
      expect(raw.readUInt32LE(4 + 4 * raw.readUInt32LE(0))).toBe(raw.length);
    }
    expect(files.filter((name) => !shards.includes(name)).every((name) => name.endsWith('.tmp'))).toBe(true);
  });
});

describe('other column encodings', () => {
  it('round-trips str, bytes, int, json and a fixed-shape ndarray', async () => {
    const dir = await tempDir();
    const writer = await MdsWriter.open({
      dir,
      columns: { text: 'str', raw: 'bytes', n: 'int', meta: 'json', fixed: 'ndarray:int32:2,2' },
      compression: 'none',
    });
    const rows = [
      {
        text: 'héllo',
        raw: Buffer.from([0, 255]),
        n: -5,
        meta: { a: [1] },
        fixed: Int32Array.of(1, -2, 3, 4),
      },
      { text: 'x', raw: Buffer.from('y'), n: 2 ** 40, meta: null, fixed: Int32Array.of(5, 6, 7, 8) },
    ];
    for (const row of rows) await writer.write(row);
    await writer.finish();
    const entry = (await readMdsIndex(dir)).shards[0]!;
    expect(entry.column_names).toEqual(['fixed', 'meta', 'n', 'raw', 'text']);
    expect(entry.column_sizes).toEqual([16, null, 8, null, null]);
    const back = [];
    for await (const sample of iterateMdsSamples(dir))
      back.push({ ...sample, fixed: [...(sample.fixed as Int32Array)] });
    expect(back).toEqual(rows.map((row) => ({ ...row, fixed: [...row.fixed] })));
  });
});

describe('parseCompression', () => {
  it('accepts none, zstd and zstd:1..9 and names the accepted values otherwise', () => {
    expect(parseCompression('none')).toEqual({ name: null, level: 0 });
    expect(parseCompression('zstd')).toEqual({ name: 'zstd', level: 3 });
    expect(parseCompression('zstd:9')).toEqual({ name: 'zstd:9', level: 9 });
    expect(() => parseCompression('zstd:12')).toThrow(/from 1 to 9/);
    expect(() => parseCompression('gzip')).toThrow(/Use none, zstd \(level 3\) or zstd:N/);
  });
});

const PYTHON_NUMPY = ['python3', '/usr/bin/python3'].find(
  (python) => spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0,
);

describe.skipIf(!PYTHON_NUMPY)(
  'a python reader of the shard bytes (numpy, as streaming decodes them)',
  () => {
    it('reads every sample back with np.frombuffer', async () => {
      const dir = await tempDir();
      const sequences = await realSequences(25, 512, true);
      await sink(dir, { boundaries: true, shardSize: 10_000 })(_(sequences));
      const reader = `
import json, sys, os, hashlib
import numpy as np
root = sys.argv[1]
index = json.load(open(os.path.join(root, 'index.json')))
digest = hashlib.sha1()
for shard in index['shards']:
    data = open(os.path.join(root, shard['raw_data']['basename']), 'rb').read()
    n = int(np.frombuffer(data[:4], np.uint32)[0])
    offsets = np.frombuffer(data[4:4 + 4 * (n + 1)], np.uint32)
    for i in range(n):
        sample = data[offsets[i]:offsets[i + 1]]
        sizes = np.frombuffer(sample[:8], np.uint32)
        pos = 8
        cols = {}
        for name, size in zip(shard['column_names'], sizes):
            col = sample[pos:pos + size]; pos += size
            ndim, code = col[0] >> 2, col[0] % 4
            shape = np.frombuffer(col[1:1 + ndim * 2 ** code], ['uint8', 'uint16', 'uint32', 'uint64'][code])
            cols[name] = np.frombuffer(col[1 + ndim * 2 ** code:], np.uint32).reshape(shape)
        assert cols['boundaries'][0] == 0
        digest.update(cols['tokens'].tobytes())
print(digest.hexdigest())
`;
      const result = spawnSync(PYTHON_NUMPY!, ['-c', reader, dir], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe(sha1(Buffer.concat(sequences.map((s) => bytesOf(s.tokens)))));
    });
  },
);
