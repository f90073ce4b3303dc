// inspect on datasets written by our sinks from real text: the counts of a valid dataset, every kind of damage
// (flipped byte, truncation, wrong hash, extra index key, bad ndarray header) named by shard, decoding, the CLI.
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import _ from 'highland';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register } from '../bin/commands/inspect.js';
import { MegadocsError } from '../lib/errors.js';
import { inspectDataset } from '../lib/inspect.js';
import { jsonlSink } from '../lib/sinks/jsonl.js';
import { mdsSink } from '../lib/sinks/mds.js';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import type { Sequence } from '../lib/types.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-inspect-'));
  dirs.push(dir);
  return dir;
}

async function copyOf(dir: string): Promise<string> {
  const copy = await tempDir();
  await cp(dir, copy, { recursive: true });
  return copy;
}

let texts: string[] = [];
let sequences: Sequence[] = [];
let mdsDir = '';
let rawDir = '';
let jsonlDir = '';

/** Real documents tokenized with cl100k_base, EOS-separated, cut into 512-token sequences (the last one shorter). */
beforeAll(async () => {
  const lines = (await readFile(path.join(DATA, 'wikipedia-2349.jsonl'), 'utf8')).split('\n').slice(0, 200);
  texts = lines.map((line) => JSON.parse(line).text as string);
  const encoder = await loadEncoder('cl100k_base');
  const ids = texts.flatMap((text) => [...encoder.encode(text), encoder.eosId]);
  for (let start = 0; start < ids.length; start += 512) {
    sequences.push({ tokens: Uint32Array.from(ids.slice(start, start + 512)) });
  }
  sequences = sequences.filter((sequence) => sequence.tokens.length > 0);
  mdsDir = await tempDir();
  await mdsSink({
    dir: mdsDir,
    dtype: 'uint32',
    boundaries: false,
    compression: 'zstd',
    shardSize: 40_000,
    hashes: ['md5', 'sha1'],
  })(_(sequences));
  await writeFile(
    path.join(mdsDir, 'megadocs.json'),
    JSON.stringify({ options: { tokenizer: 'cl100k_base' } }),
  );
  rawDir = await tempDir();
  await mdsSink({
    dir: rawDir,
    dtype: 'uint32',
    boundaries: true,
    compression: 'none',
    shardSize: 40_000,
    hashes: [],
  })(_(sequences));
  jsonlDir = await tempDir();
  await jsonlSink({ dir: jsonlDir, compression: 'zstd', shardSize: 50_000 })(
    _(texts.map((text, id) => ({ id, text }))),
  );
});

const firstShard = async (dir: string, suffix: string) =>
  (await readdir(dir)).filter((name) => name.endsWith(suffix)).sort()[1]!;

describe('a valid dataset', () => {
  it('reports shards, samples, tokens per sample and bytes', async () => {
    const report = await inspectDataset(mdsDir);
    const lengths = sequences.map((sequence) => sequence.tokens.length);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({
      valid: true,
      format: 'mds',
      samples: sequences.length,
      tokens: lengths.reduce((a, b) => a + b, 0),
      minTokens: Math.min(...lengths),
      maxTokens: 512,
      columns: ['tokens'],
      compression: 'zstd',
    });
    const index = JSON.parse(await readFile(path.join(mdsDir, 'index.json'), 'utf8'));
    expect(report.shards).toBe(index.shards.length);
    expect(report.shards).toBeGreaterThan(2);
    expect(report.storedBytes).toBeLessThan(report.rawBytes);
    expect(report.compressionRatio).toBeCloseTo(report.rawBytes / report.storedBytes);
  });

  it('decodes the first samples with the tokenizer named in megadocs.json', async () => {
    const report = await inspectDataset(mdsDir, { decode: 2 });
    expect(report.decoded.map((item) => item.sample)).toEqual([0, 1]);
    const joined = report.decoded.map((item) => item.text).join('');
    expect(texts[0]!.startsWith(joined.slice(0, 200))).toBe(true);
    expect(joined.length).toBeGreaterThan(500);
  });

  it('asks for --tokenizer when the dataset does not name one', async () => {
    await expect(inspectDataset(rawDir, { decode: 1 })).rejects.toThrow(/Pass --tokenizer/);
    const report = await inspectDataset(rawDir, { decode: 1, tokenizer: 'cl100k_base' });
    expect(texts[0]!.startsWith(report.decoded[0]!.text.slice(0, 100))).toBe(true);
  });

  it('validates a jsonl dataset and counts its records', async () => {
    const report = await inspectDataset(jsonlDir, { decode: 1 });
    expect(report).toMatchObject({
      valid: true,
      format: 'jsonl',
      samples: texts.length,
      compression: 'zstd',
    });
    expect(report.decoded[0]!.text).toBe(texts[0]);
  });
});

describe('damage, named by shard', () => {
  it('a flipped byte in a compressed shard', async () => {
    const dir = await copyOf(mdsDir);
    const name = await firstShard(dir, '.mds.zstd');
    const file = path.join(dir, name);
    const bytes = await readFile(file);
    bytes[bytes.length >> 1] ^= 0x40;
    await writeFile(file, bytes);
    const report = await inspectDataset(dir);
    expect(report.valid).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatch(
      new RegExp(`^${name.replaceAll('.', '\\.')}: md5 is [0-9a-f]{32}, index\\.json says [0-9a-f]{32}$`),
    );
  });

  it('a truncated shard', async () => {
    const dir = await copyOf(mdsDir);
    const name = await firstShard(dir, '.mds.zstd');
    await truncate(path.join(dir, name), 100);
    const report = await inspectDataset(dir);
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    const entry = index.shards.find(
      (shard: { zip_data: { basename: string } }) => shard.zip_data.basename === name,
    );
    expect(report.problems).toEqual([`${name}: has 100 bytes, index.json says ${entry.zip_data.bytes}`]);
  });

  it('a wrong hash in index.json', async () => {
    const dir = await copyOf(mdsDir);
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    index.shards[2].raw_data.hashes.sha1 = '0'.repeat(40);
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    const report = await inspectDataset(dir);
    expect(report.problems).toEqual([
      expect.stringMatching(
        /^shard\.00002\.mds\.zstd: decompressed \(shard\.00002\.mds\) sha1 is [0-9a-f]{40}, index\.json says 0{40}$/,
      ),
    ]);
  });

  it('an extra key in a shard entry', async () => {
    const dir = await copyOf(mdsDir);
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    index.shards[1].extra = true;
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    const report = await inspectDataset(dir);
    expect(report.problems).toEqual([
      expect.stringMatching(/^index\.json shard 1: shard entry keys are \[.*extra.*\]/),
    ]);
  });

  it('a bad ndarray header in an unhashed raw shard', async () => {
    const dir = await copyOf(rawDir);
    const name = 'shard.00001.mds';
    const file = path.join(dir, name);
    const bytes = await readFile(file);
    const sample3 = bytes.readUInt32LE(4 + 4 * 3);
    const boundaryBytes = bytes.readUInt32LE(sample3);
    const tokensHeader = sample3 + 8 + boundaryBytes;
    expect(bytes[tokensHeader]).toBe(0x05);
    bytes[tokensHeader + 1] ^= 0x01; // the length 512 (0x0200) becomes 513
    await writeFile(file, bytes);
    const report = await inspectDataset(dir);
    expect(report.problems).toEqual([
      `${name}: sample 3, column tokens: ndarray of shape [513] uint32 needs 2055 bytes, the column has 2051`,
    ]);
  });

  it('a truncated raw shard whose index was fixed up to match', async () => {
    const dir = await copyOf(rawDir);
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    const entry = index.shards[0];
    entry.raw_data.bytes -= 10;
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    await truncate(path.join(dir, entry.raw_data.basename), entry.raw_data.bytes);
    const report = await inspectDataset(dir);
    expect(report.problems).toEqual([
      `shard.00000.mds: last sample offset is ${entry.raw_data.bytes + 10} but the shard has ${entry.raw_data.bytes} bytes (truncated or padded)`,
    ]);
  });

  it('a jsonl shard with a record count that does not match', async () => {
    const dir = await copyOf(jsonlDir);
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    index.shards[0].records += 1;
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    const report = await inspectDataset(dir);
    expect(report.problems).toEqual([
      `shard.00000.jsonl.zst: holds ${index.shards[0].records - 1} lines, index.json says ${index.shards[0].records}`,
    ]);
  });
});

describe('megadocs inspect (command)', () => {
  async function run(args: string[]): Promise<{ stdout: string; error: unknown }> {
    const program = new Command('megadocs').exitOverride();
    register(program);
    let stdout = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += chunk.toString();
      return true;
    });
    try {
      await program.parseAsync(['node', 'megadocs', 'inspect', ...args]);
      return { stdout, error: undefined };
    } catch (error) {
      return { stdout, error };
    } finally {
      spy.mockRestore();
    }
  }

  it('prints JSON with --json and succeeds on a valid dataset', async () => {
    const { stdout, error } = await run([mdsDir, '--json']);
    expect(error).toBeUndefined();
    expect(JSON.parse(stdout)).toMatchObject({ valid: true, samples: sequences.length });
  });

  it('prints a human summary with decoded text', async () => {
    const { stdout, error } = await run([mdsDir, '--decode', '1']);
    expect(error).toBeUndefined();
    expect(stdout).toMatch(/: valid\n/);
    expect(stdout).toContain(`samples        ${sequences.length}`);
    expect(stdout).toContain('--- sample 0 ---');
  });

  it('fails with a MegadocsError naming the shard on a damaged dataset', async () => {
    const dir = await copyOf(mdsDir);
    await truncate(path.join(dir, 'shard.00001.mds.zstd'), 50);
    const { error } = await run([dir, '--quiet']);
    expect(error).toBeInstanceOf(MegadocsError);
    expect((error as MegadocsError).message).toMatch(
      /1 problem\(s\):\n {2}shard\.00001\.mds\.zstd: has 50 bytes/,
    );
  });
});
