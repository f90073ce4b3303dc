// feed: the byte stream equals the samples read back by the reader (uint32 and uint16), the shuffle is a
// reproducible permutation per seed and epoch, backpressure bounds the buffer, EPIPE ends quietly, python reads it.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import _ from 'highland';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MegadocsError } from '../lib/errors.js';
import { type FeedOptions, writeFeed } from '../lib/feed.js';
import { mdsSink } from '../lib/sinks/mds.js';
import { iterateMdsSamples } from '../lib/sinks/mds-reader.js';

const REPO = path.resolve(import.meta.dirname, '..');
const DATA = path.resolve(REPO, '../shared/data');
const SEQ_LEN = 256;
const SEQUENCES = 120;
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-feed-'));
  dirs.push(dir);
  return dir;
}

const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');
let dataset = '';
let wideDataset = '';
let storageOrder: Buffer;

/** War and Peace as 16-bit words (ids below 60,000), cut into 120 sequences of 256, written as ~12 shards. */
beforeAll(async () => {
  const text = await readFile(path.join(DATA, 'war-and-peace.txt'));
  const words = new Uint16Array(text.buffer, text.byteOffset, SEQUENCES * SEQ_LEN);
  const sequences = Array.from({ length: SEQUENCES }, (_v, at) => ({
    tokens: Uint32Array.from(words.subarray(at * SEQ_LEN, (at + 1) * SEQ_LEN), (word) => word % 60_000),
  }));
  dataset = await tempDir();
  const options = { boundaries: false, compression: 'zstd', shardSize: 10_000, hashes: ['sha1'] };
  const summary = await mdsSink({ dir: dataset, dtype: 'uint32', ...options })(_(sequences));
  expect(summary.shards).toBeGreaterThan(8);
  await writeFile(path.join(dataset, 'megadocs.json'), JSON.stringify({ options: { seqLen: SEQ_LEN } }));
  wideDataset = await tempDir();
  const wide = sequences.map(({ tokens }, at) => ({
    tokens: at === 77 ? tokens.map((id) => id + 70_000) : tokens,
  }));
  await mdsSink({ dir: wideDataset, dtype: 'uint32', ...options })(_(wide));
  const parts: Buffer[] = [];
  for await (const sample of iterateMdsSamples(dataset)) {
    const tokens = sample.tokens as Uint32Array;
    parts.push(Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  }
  storageOrder = Buffer.concat(parts);
});

async function feed(
  dir: string,
  options: FeedOptions & { dtype?: 'uint16' | 'uint32' } = {},
): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const summary = await writeFeed(dir, out, options);
  out.end();
  const bytes = Buffer.concat(chunks);
  expect(summary.bytes).toBe(bytes.length);
  return bytes;
}

/** The stream cut into sequences, each as a hex string (to compare orders and multisets). */
function split(bytes: Buffer, width = 4): string[] {
  const size = SEQ_LEN * width;
  return Array.from({ length: bytes.length / size }, (_v, at) =>
    bytes.subarray(at * size, (at + 1) * size).toString('hex'),
  );
}

describe('feed in storage order', () => {
  it('writes exactly the samples the reader reads, as uint32', async () => {
    const bytes = await feed(dataset);
    expect(bytes.length).toBe(SEQUENCES * SEQ_LEN * 4);
    expect(Buffer.compare(bytes, storageOrder)).toBe(0);
  });

  it('writes uint16 when every id fits', async () => {
    const bytes = await feed(dataset, { dtype: 'uint16' });
    const expected = Buffer.from(
      Uint16Array.from(
        new Uint32Array(
          storageOrder.buffer.slice(storageOrder.byteOffset, storageOrder.byteOffset + storageOrder.length),
        ),
      ).buffer,
    );
    expect(Buffer.compare(bytes, expected)).toBe(0);
  });

  it('refuses uint16 for an id of 65536 or more, naming the shard and sample', async () => {
    const error = await feed(wideDataset, { dtype: 'uint16' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MegadocsError);
    expect((error as Error).message).toMatch(
      /^shard\.\d{5}\.mds\.zstd: sample \d+: token id \d+ does not fit uint16\. Use --dtype uint32/,
    );
  });
});

describe('shuffled feed', () => {
  const sorted = (items: string[]) => [...items].sort();

  it('is a permutation of the samples, the same for the same seed, another for another seed', async () => {
    const first = await feed(dataset, { shuffleSeed: 1 });
    const again = await feed(dataset, { shuffleSeed: 1 });
    const other = await feed(dataset, { shuffleSeed: 2 });
    expect(sorted(split(first))).toEqual(sorted(split(storageOrder)));
    expect(Buffer.compare(first, storageOrder)).not.toBe(0);
    expect(Buffer.compare(first, again)).toBe(0);
    expect(Buffer.compare(first, other)).not.toBe(0);
    expect(sorted(split(other))).toEqual(sorted(split(storageOrder)));
  });

  it('gives each epoch its own permutation', async () => {
    const bytes = await feed(dataset, { shuffleSeed: 5, epochs: 2 });
    const sequences = split(bytes);
    const [one, two] = [sequences.slice(0, SEQUENCES), sequences.slice(SEQUENCES)];
    expect(sorted(one)).toEqual(sorted(split(storageOrder)));
    expect(sorted(two)).toEqual(sorted(one));
    expect(two).not.toEqual(one);
  });

  it('with one shard per window keeps each shard together', async () => {
    const bytes = await feed(dataset, { shuffleSeed: 9, windowShards: 1 });
    const index = JSON.parse(await readFile(path.join(dataset, 'index.json'), 'utf8'));
    const shardOf = new Map<string, number>();
    let position = 0;
    const stored = split(storageOrder);
    index.shards.forEach((shard: { samples: number }, number: number) => {
      for (let at = 0; at < shard.samples; at += 1) shardOf.set(stored[position++]!, number);
    });
    const runs = split(bytes).map((sequence) => shardOf.get(sequence));
    const changes = runs.filter((shard, at) => at > 0 && shard !== runs[at - 1]).length;
    expect(changes).toBe(index.shards.length - 1);
  });
});

describe('the pipe', () => {
  it('waits for drain: the buffered bytes stay bounded while a slow reader takes 40 epochs', async () => {
    let received = 0;
    let maxBuffered = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        setTimeout(callback, 1);
      },
    });
    const original = slow.write.bind(slow);
    slow.write = ((chunk: Buffer, ...rest: never[]) => {
      const result = original(chunk, ...rest);
      maxBuffered = Math.max(maxBuffered, slow.writableLength);
      return result;
    }) as typeof slow.write;
    const summary = await writeFeed(dataset, slow, { epochs: 40 });
    await new Promise((resolve) => slow.end(resolve));
    expect(received).toBe(40 * storageOrder.length);
    expect(summary.bytes).toBe(received);
    expect(maxBuffered).toBeLessThan(2 * 1024 * 1024 + 64 * 1024);
  });

  it('ends quietly with closedEarly when the reader closes the pipe (EPIPE)', async () => {
    const head = spawn('head', ['-c', '1000'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const summary = await writeFeed(dataset, head.stdin, { epochs: 200 });
    expect(summary.closedEarly).toBe(true);
    expect(summary.bytes).toBeLessThan(200 * storageOrder.length);
  });
});

const PYTHON_NUMPY = ['python3', '/usr/bin/python3'].find(
  (python) => spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0,
);

describe.skipIf(!PYTHON_NUMPY)('examples/pytorch_feed.py (numpy part)', () => {
  it('reads the same sequences from the pipe, in storage and shuffled order', async () => {
    const script = path.join(await tempDir(), 'megadocs-feed.mjs');
    const commander = createRequire(import.meta.url).resolve('commander');
    await writeFile(
      script,
      `import { Command } from ${JSON.stringify(commander)};
       import { register } from ${JSON.stringify(path.join(REPO, 'bin/commands/feed.ts'))};
       const program = new Command('megadocs');
       register(program);
       await program.parseAsync(process.argv);`,
    );
    const command = `${process.execPath} --import tsx ${script}`;
    const run = (...args: string[]) => {
      const result = spawnSync(
        PYTHON_NUMPY!,
        [path.join(REPO, 'examples/pytorch_feed.py'), dataset, '--command', command, ...args],
        {
          encoding: 'utf8',
          cwd: REPO,
        },
      );
      expect(result.stderr).toBe('');
      return JSON.parse(result.stdout);
    };
    expect(run()).toEqual({ sequences: SEQUENCES, sha1: sha1(storageOrder) });
    expect(run('--shuffle', '--seed', '3', '--dtype', 'uint16')).toEqual({
      sequences: SEQUENCES,
      sha1: sha1(await feed(dataset, { shuffleSeed: 3 })),
    });
  });
});
