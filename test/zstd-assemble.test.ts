// One zstd frame assembled from a header, Raw blocks and the blocks of a frame compressed separately: headers at
// both widths, the block walker over frames with a checksum (by hand and from the zstd CLI) in any piece sizes,
// its CORRUPT cases, frames compressed with no size known up front, and decoders (fzstd, the CLI, python zstd).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseZstdFrameHeader,
  readFrameContentSize,
  ZSTD_BLOCK_MAX_BYTES,
  ZSTD_PIECE_BYTES,
  ZstdFrameCompressor,
  ZstdFrameStream,
  zstdDecompress,
  zstdFrameHeader,
  zstdFrameLengths,
  zstdFrameWithRawPrefix,
  zstdRawBlocks,
} from '../lib/codecs/zstd.js';
import { MegadocsError } from '../lib/errors.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const TEXT = readFileSync(path.join(DATA, 'war-and-peace.txt'));
const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');
const HAS_ZSTD_CLI = spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
/** A python that can `import zstd` (the module the MDS reader decompresses with), if any. */
const PYTHON_ZSTD = ['python3', '/usr/bin/python3'].find(
  (python) => spawnSync(python, ['-c', 'import zstd'], { stdio: 'ignore' }).status === 0,
);

/** Everything `pieces` yields, each copied as it comes (a piece may be overwritten once the next is asked for). */
async function collect(pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const piece of pieces) all.push(Buffer.from(piece));
  return Buffer.concat(all);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** `data` streamed in pieces of `size` bytes, each a copy in ONE reused buffer (as RawShardFile.pieces reads). */
async function* reusedPieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  const buffer = Buffer.alloc(size);
  for (let start = 0; start < data.length; start += size) {
    const length = Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(
      buffer,
      0,
      start,
      start + size,
    );
    yield buffer.subarray(0, length);
  }
}

/** A frame of Raw blocks by hand: Single_Segment, 1-byte size, checksum flag set, 4 checksum bytes at the end. */
function handMadeFrameWithChecksum(content: Buffer): Buffer {
  const blocks = [...zstdRawBlocks(content.subarray(0, content.length - 10), 1000)];
  const last = Buffer.alloc(3);
  last.writeUIntLE((10 << 3) | 1, 0, 3);
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x24, content.length]);
  return Buffer.concat([header, ...blocks, last, content.subarray(content.length - 10), Buffer.from('CSUM')]);
}

async function bodyFrame(body: Uint8Array, level = 3): Promise<Buffer> {
  const frame = await ZstdFrameCompressor.begin(level);
  const outputs: Buffer[] = [];
  for (let start = 0; start < body.length; start += 700_000) {
    outputs.push(...(await frame.compress(body.subarray(start, start + 700_000))));
  }
  outputs.push(...(await frame.end()));
  return Buffer.concat(outputs);
}

describe('zstdFrameHeader', () => {
  it('declares the size in 4 bytes (8 from 4 GiB), with the given window or Single_Segment', () => {
    const single = parseZstdFrameHeader(zstdFrameHeader(1234));
    expect(single).toMatchObject({ headerSize: 9, contentSize: 1234, contentSizeBytes: 4, windowSize: 1234 });
    expect(single).toMatchObject({ hasChecksum: false, hasDictionary: false, windowDescriptor: undefined });
    const windowed = parseZstdFrameHeader(zstdFrameHeader(2 ** 32 + 5, 0x50));
    expect(windowed).toMatchObject({ headerSize: 14, contentSize: 2 ** 32 + 5, contentSizeBytes: 8 });
    expect(windowed).toMatchObject({ windowDescriptor: 0x50, windowSize: 2 ** 20 });
    expect(parseZstdFrameHeader(zstdFrameHeader(2 ** 32 - 1)).contentSizeBytes).toBe(4);
  });
});

describe('zstdRawBlocks', () => {
  it('cuts content into Raw blocks of at most the block size, none marked last', async () => {
    const content = TEXT.subarray(0, 2 * ZSTD_BLOCK_MAX_BYTES + 5);
    const pieces = [...zstdRawBlocks(content)];
    const headers = pieces
      .filter((_piece, at) => at % 2 === 0)
      .map((piece) => Buffer.from(piece).readUIntLE(0, 3));
    expect(headers).toEqual([ZSTD_BLOCK_MAX_BYTES << 3, ZSTD_BLOCK_MAX_BYTES << 3, 5 << 3]);
    expect(Buffer.compare(Buffer.concat(pieces.filter((_piece, at) => at % 2 === 1)), content)).toBe(0);
    expect([...zstdRawBlocks(new Uint8Array(0))]).toEqual([]);
  });
});

describe('ZstdFrameStream (the block walker)', () => {
  it.each([1, 7, 1000, 1 << 20])(
    'passes the blocks of a hand-made frame with a checksum through, dropping header and checksum (%i-byte pieces)',
    async (pieceSize) => {
      const content = TEXT.subarray(0, 250);
      const frame = handMadeFrameWithChecksum(content);
      expect(zstdDecompress(frame).equals(content)).toBe(true);
      const stream = await ZstdFrameStream.open(reusedPieces(frame, pieceSize));
      expect(stream.header).toMatchObject({ hasChecksum: true, headerSize: 6, contentSize: 250 });
      const blocks = await collect(stream.blocks());
      expect(blocks.equals(frame.subarray(6, frame.length - 4))).toBe(true);
      const assembled = await collect(zstdFrameWithRawPrefix(Buffer.from('PREFIX'), 250, once(frame)));
      expect(parseZstdFrameHeader(assembled).hasChecksum).toBe(false);
      expect(zstdDecompress(assembled).toString('latin1')).toBe(`PREFIX${content.toString('latin1')}`);
      await expect(collect(zstdFrameWithRawPrefix(Buffer.from('PREFIX'), 249, once(frame)))).rejects.toThrow(
        /declares 250 bytes, not the body's 249/,
      );
    },
  );

  it.skipIf(!HAS_ZSTD_CLI)(
    'takes the compressed blocks of a zstd CLI frame (checksum, window) after a prefix of several Raw blocks',
    async () => {
      const body = TEXT.subarray(0, 3_000_000);
      const frame = execFileSync('zstd', ['-5', '-c', '-q', '--no-content-size'], { input: body });
      const header = parseZstdFrameHeader(frame);
      expect(header.hasChecksum).toBe(true);
      expect(header.windowDescriptor).toBeDefined();
      const prefix = TEXT.subarray(3_000_000, 3_000_000 + 3 * ZSTD_BLOCK_MAX_BYTES + 17);
      const assembled = await collect(
        zstdFrameWithRawPrefix(prefix, body.length, reusedPieces(frame, 65_536)),
      );
      const expected = sha1(Buffer.concat([prefix, body]));
      expect(zstdFrameLengths(assembled)).toEqual([assembled.length]);
      expect(readFrameContentSize(assembled)).toBe(prefix.length + body.length);
      expect(parseZstdFrameHeader(assembled).windowDescriptor).toBe(header.windowDescriptor);
      expect(sha1(zstdDecompress(assembled))).toBe(expected);
      const cli = execFileSync('zstd', ['-d', '-c', '-q'], { input: assembled, maxBuffer: 1 << 26 });
      expect(sha1(cli)).toBe(expected);
    },
  );

  it('refuses bytes that are not exactly one frame ending with a last block (CORRUPT)', async () => {
    const frame = handMadeFrameWithChecksum(TEXT.subarray(0, 250));
    const walk = (bytes: Uint8Array) =>
      ZstdFrameStream.open(once(bytes)).then((stream) => collect(stream.blocks()));
    const cases: Array<[Uint8Array, RegExp]> = [
      [Buffer.concat([frame, frame]), /followed by more bytes/],
      [frame.subarray(0, frame.length - 2), /inside its checksum/],
      [frame.subarray(0, frame.length - 20), /inside a block/],
      [frame.subarray(0, 6), /before its last block/],
      [Buffer.concat([frame.subarray(0, 6), Buffer.from([0x07, 0, 0])]), /reserved type/],
      [TEXT.subarray(0, 100), /magic/],
      [new Uint8Array(0), /magic/],
      [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x01, 0x50, 0x07, 0x01, 0, 0]), /dictionary/],
    ];
    for (const [bytes, message] of cases) {
      const error = await walk(bytes).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MegadocsError);
      expect((error as MegadocsError).code).toBe('CORRUPT');
      expect((error as MegadocsError).message).toMatch(message);
    }
  });
});

describe('ZstdFrameCompressor (no size known up front) assembled after a prefix', () => {
  it.each([0, 5, 300, 2 * ZSTD_PIECE_BYTES + 999])(
    'decodes to prefix + body exactly, body of %i bytes, one frame declaring the total',
    async (size) => {
      const body = TEXT.subarray(100, 100 + size);
      const frame = await bodyFrame(body);
      // libzstd declares the size of a body it got whole before the frame's first block; zstd-codec never does.
      expect([undefined, size]).toContain(readFrameContentSize(frame));
      for (const prefix of [
        new Uint8Array(0),
        TEXT.subarray(0, 3),
        TEXT.subarray(0, 5 * ZSTD_BLOCK_MAX_BYTES),
      ]) {
        const assembled = await collect(zstdFrameWithRawPrefix(prefix, size, reusedPieces(frame, 4096)));
        expect(zstdFrameLengths(assembled)).toEqual([assembled.length]);
        expect(readFrameContentSize(assembled)).toBe(prefix.length + size);
        expect(zstdDecompress(assembled).equals(Buffer.concat([prefix, body]))).toBe(true);
      }
    },
  );

  it('runs two frames open at once on two workers (two writers filling together do not wait on each other)', async () => {
    const [a, b] = await Promise.all([ZstdFrameCompressor.begin(3), ZstdFrameCompressor.begin(6)]);
    const inputs = [TEXT.subarray(0, 3_000_000), TEXT.subarray(200_000, 2_500_000)];
    const outputs: Buffer[][] = [[], []];
    for (let start = 0; start < 3_000_000; start += 1_000_000) {
      outputs[0]!.push(...(await a!.compress(inputs[0]!.subarray(start, start + 1_000_000))));
      outputs[1]!.push(...(await b!.compress(inputs[1]!.subarray(start, start + 1_000_000))));
    }
    outputs[0]!.push(...(await a!.end()));
    outputs[1]!.push(...(await b!.end()));
    for (const at of [0, 1])
      expect(zstdDecompress(Buffer.concat(outputs[at]!)).equals(inputs[at]!)).toBe(true);
    await expect(a!.compress(TEXT.subarray(0, 10))).rejects.toThrow(/already ended/);
  });

  it.skipIf(!PYTHON_ZSTD)("python's zstd reads the assembled frame", async () => {
    const body = TEXT.subarray(0, 1_500_000);
    const prefix = TEXT.subarray(2_000_000, 2_000_000 + 2 * ZSTD_BLOCK_MAX_BYTES + 1);
    const assembled = await collect(zstdFrameWithRawPrefix(prefix, body.length, once(await bodyFrame(body))));
    const python = spawnSync(
      PYTHON_ZSTD!,
      [
        '-c',
        'import sys, zstd, hashlib; print(hashlib.sha1(zstd.decompress(sys.stdin.buffer.read())).hexdigest())',
      ],
      { input: assembled, encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    expect(python.stderr).toBe('');
    expect(python.stdout.trim()).toBe(sha1(Buffer.concat([prefix, body])));
  });
});
