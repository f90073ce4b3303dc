// zstd compression into one frame that declares its content size: round trips on real text, a 64 MiB+ input,
// streamed pieces (same bytes as zstd-codec's one-call streaming API), the header rewrite at every
// Frame_Content_Size width, and cross-checks with the zstd CLI and python's `zstd`.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseZstdFrameHeader,
  readFrameContentSize,
  withFrameContentSize,
  ZSTD_MAX_LEVEL,
  ZSTD_PIECE_BYTES,
  zstdCompressFrame,
  zstdCompressStream,
  zstdDecompress,
  zstdFrameLengths,
} from '../lib/codecs/zstd.js';
import { MegadocsError } from '../lib/errors.js';

// This file checks the zstd-codec engine byte for byte against zstd-codec's own one-call output (every
// compression below asks for it); test/zstd-native.test.ts checks the native engine the workers use by default.
const ENGINE = 'zstd-codec';
const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const TEXT = readFileSync(path.join(DATA, 'war-and-peace.txt'));

const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');

function hasCommand(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** A python that can `import zstd` (the module the MDS reader decompresses with), if any. */
const PYTHON_ZSTD = ['python3', '/usr/bin/python3'].find((python) =>
  hasCommand(python, ['-c', 'import zstd']),
);
const HAS_ZSTD_CLI = hasCommand('zstd', ['--version']);

describe('zstdCompressFrame', () => {
  it.each([0, 1, 255, 256, 300, 65_791, 65_792, 1_000_000])(
    'round-trips %i bytes of real text as one frame that declares its size',
    async (size) => {
      const input = TEXT.subarray(0, size);
      const frame = await zstdCompressFrame(input, 3, ENGINE);
      expect(zstdFrameLengths(frame)).toEqual([frame.length]);
      expect(readFrameContentSize(frame)).toBe(size);
      expect(Buffer.compare(zstdDecompress(frame), input)).toBe(0);
    },
  );

  it.each([1, 5, ZSTD_MAX_LEVEL])(
    'compresses at level %i, smaller at higher levels than raw',
    async (level) => {
      const input = TEXT.subarray(0, 2_000_000);
      const frame = await zstdCompressFrame(input, level, ENGINE);
      expect(frame.length).toBeLessThan(input.length / 2);
      expect(sha1(zstdDecompress(frame))).toBe(sha1(input));
    },
  );

  it('writes a 64 MiB + 1234 byte input as ONE frame with its content size', async () => {
    const size = 64 * 1024 * 1024 + 1234;
    const input = Buffer.alloc(size);
    for (let at = 0, copy = 0; at < size; at += TEXT.length, copy += 1) {
      TEXT.copy(input, at);
      input.writeUInt32LE(copy, at); // every copy differs a little
    }
    const frame = await zstdCompressFrame(input, 3, ENGINE);
    expect(zstdFrameLengths(frame)).toEqual([frame.length]);
    expect(readFrameContentSize(frame)).toBe(size);
    const header = parseZstdFrameHeader(frame);
    expect(header.contentSizeBytes).toBe(4);
    expect(sha1(zstdDecompress(frame))).toBe(sha1(input));
  });

  it.each([0, 10, 19, 2.5, -1])('rejects level %s with the accepted range in the message', async (level) => {
    const error = await zstdCompressFrame(TEXT.subarray(0, 100), level, ENGINE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MegadocsError);
    expect((error as MegadocsError).message).toContain(`from 1 to ${ZSTD_MAX_LEVEL}`);
  });
});

/** zstd-codec's own one-call streaming compression (what the writers used before they streamed), made to declare its size. */
async function oneCallFrame(data: Uint8Array, level: number): Promise<Buffer> {
  const { ZstdCodec } = createRequire(import.meta.url)('zstd-codec');
  const streaming = await new Promise<{
    compressChunks(c: Uint8Array[], hint: number, l: number): Uint8Array;
  }>((resolve) => ZstdCodec.run((zstd: { Streaming: new () => never }) => resolve(new zstd.Streaming())));
  const chunks = [];
  for (let start = 0; start < data.length; start += 1 << 20)
    chunks.push(data.subarray(start, start + (1 << 20)));
  return withFrameContentSize(streaming.compressChunks(chunks, data.length, level), data.length);
}

async function collect(outputs: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const all: Uint8Array[] = [];
  for await (const output of outputs) all.push(output);
  return Buffer.concat(all);
}

describe('zstdCompressStream', () => {
  it('writes the same bytes as zstd-codec compressing the whole input in one call, whatever the piece sizes', async () => {
    const input = TEXT.subarray(0, 3 * ZSTD_PIECE_BYTES + 12_345);
    const expected = await oneCallFrame(input, 4);
    const oddPieces = function* () {
      for (let start = 0, size = 1; start < input.length; start += size, size = (size * 7) % 2_500_001) {
        yield input.subarray(start, start + size);
      }
    };
    const whole = await collect(zstdCompressStream([input], input.length, 4, ENGINE));
    const odd = await collect(zstdCompressStream(oddPieces(), input.length, 4, ENGINE));
    expect(Buffer.compare(whole, expected)).toBe(0);
    expect(Buffer.compare(odd, expected)).toBe(0);
    expect(Buffer.compare(await zstdCompressFrame(input, 4, ENGINE), expected)).toBe(0);
  });

  it('copies each piece: a caller that refills one buffer for every piece gets the right frame', async () => {
    const input = TEXT.subarray(0, 2_000_000);
    const reused = Buffer.alloc(65_536);
    async function* refilled() {
      for (let start = 0; start < input.length; start += reused.length) {
        const length = input.copy(reused, 0, start, start + reused.length);
        yield reused.subarray(0, length);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    const frame = await collect(zstdCompressStream(refilled(), input.length, 3, ENGINE));
    expect(zstdFrameLengths(frame)).toEqual([frame.length]);
    expect(readFrameContentSize(frame)).toBe(input.length);
    expect(sha1(zstdDecompress(frame))).toBe(sha1(input));
  });

  it('runs frames started together, each on a free worker, each complete and the same as alone', async () => {
    const inputs = [0, 1, 300, 70_000, 2_500_000].map((size, at) =>
      TEXT.subarray(at * 1000, at * 1000 + size),
    );
    const together = await Promise.all(inputs.map((input) => zstdCompressFrame(input, 4, ENGINE)));
    for (const [at, input] of inputs.entries()) {
      expect(Buffer.compare(together[at]!, await oneCallFrame(input, 4))).toBe(0);
      expect(readFrameContentSize(together[at]!)).toBe(input.length);
    }
  });

  it('refuses more or fewer bytes than declared, and the next frame still compresses', async () => {
    const input = TEXT.subarray(0, 5_000);
    await expect(collect(zstdCompressStream([input], 4_999, 3, ENGINE))).rejects.toThrow(
      /declared 4999 bytes got more/,
    );
    await expect(collect(zstdCompressStream([input], 5_001, 3, ENGINE))).rejects.toThrow(
      /declared 5001 bytes got 5000/,
    );
    const frame = await zstdCompressFrame(input, 3, ENGINE);
    expect(sha1(zstdDecompress(frame))).toBe(sha1(input));
  });

  it('a consumer that stops early releases the worker for the next frame', async () => {
    const input = TEXT.subarray(0, 3_000_000);
    for await (const output of zstdCompressStream([input], input.length, 3, ENGINE)) {
      expect(output.length).toBeGreaterThan(0);
      break;
    }
    expect(sha1(zstdDecompress(await zstdCompressFrame(input, 3, ENGINE)))).toBe(sha1(input));
  });

  it('refuses unsupported levels before reaching the worker', async () => {
    await expect(collect(zstdCompressStream([TEXT.subarray(0, 10)], 10, 12, ENGINE))).rejects.toThrow(
      /from 1 to 9/,
    );
  });
});

describe('frame headers', () => {
  it('counts concatenated frames and rejects bytes that are not a frame', async () => {
    const a = await zstdCompressFrame(TEXT.subarray(0, 5000), 3, ENGINE);
    const b = await zstdCompressFrame(TEXT.subarray(5000, 9000), 3, ENGINE);
    expect(zstdFrameLengths(Buffer.concat([a, b]))).toEqual([a.length, b.length]);
    expect(() => zstdFrameLengths(a.subarray(0, a.length - 2))).toThrow(/truncated/);
    expect(() => readFrameContentSize(TEXT.subarray(0, 64))).toThrow(/magic/);
  });

  it('keeps a frame that already declares the right size and refuses a wrong one', async () => {
    const frame = await zstdCompressFrame(TEXT.subarray(0, 4000), 3, ENGINE);
    expect(Buffer.compare(withFrameContentSize(frame, 4000), frame)).toBe(0);
    expect(() => withFrameContentSize(frame, 4001)).toThrow(/declares 4000 bytes/);
  });
});

describe.skipIf(!HAS_ZSTD_CLI)('cross-check with the zstd CLI', () => {
  it('the CLI decompresses our frame and reports one frame with the content size', async () => {
    const input = TEXT.subarray(0, 3_000_000);
    const frame = await zstdCompressFrame(input, 3, ENGINE);
    const out = execFileSync('zstd', ['-d', '-c', '-q'], { input: frame, maxBuffer: 1 << 26 });
    expect(sha1(out)).toBe(sha1(input));
  });

  it.each([100, 300, 70_000])(
    'adds the content size to a CLI frame written without one (%i bytes); the CLI still accepts it',
    (size) => {
      const input = TEXT.subarray(0, size);
      const bare = execFileSync('zstd', ['-3', '-c', '-q', '--no-content-size'], { input });
      expect(readFrameContentSize(bare)).toBeUndefined();
      const fixed = withFrameContentSize(bare, size);
      expect(readFrameContentSize(fixed)).toBe(size);
      expect(fixed.length - bare.length).toBe(parseZstdFrameHeader(fixed).contentSizeBytes);
      expect(sha1(execFileSync('zstd', ['-d', '-c', '-q'], { input: fixed }))).toBe(sha1(input));
      expect(sha1(zstdDecompress(fixed))).toBe(sha1(input));
    },
  );

  it('decompresses a level-19 CLI frame (the shared wikipedia shard)', () => {
    const stored = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl.zst'));
    const expected = execFileSync('zstd', ['-d', '-c', '-q'], { input: stored, maxBuffer: 1 << 28 });
    expect(sha1(zstdDecompress(stored))).toBe(sha1(expected));
  });
});

describe.skipIf(!PYTHON_ZSTD || !HAS_ZSTD_CLI)("python's zstd (the MDS reader's decompressor)", () => {
  const pythonDecompressSha1 = (frame: Buffer) =>
    spawnSync(
      PYTHON_ZSTD!,
      [
        '-c',
        'import sys, zstd, hashlib; print(hashlib.sha1(zstd.decompress(sys.stdin.buffer.read())).hexdigest())',
      ],
      { input: frame, encoding: 'utf8', maxBuffer: 1 << 26 },
    );

  it('rejects a frame without a content size but accepts ours', async () => {
    const input = TEXT.subarray(0, 500_000);
    const bare = execFileSync('zstd', ['-3', '-c', '-q', '--no-content-size'], { input });
    expect(pythonDecompressSha1(bare).status).not.toBe(0);
    const ours = pythonDecompressSha1(await zstdCompressFrame(input, 3, ENGINE));
    expect(ours.stderr).toBe('');
    expect(ours.stdout.trim()).toBe(sha1(input));
  });
});
