// The native zstd engine (zstd-napi, an optional dependency): picked by default when it loads, frames that
// decode exactly and declare their size, the same bytes whatever the piece sizes, MEGADOCS_ZSTD=zstd-codec
// to force the wasm engine, and megadocs.json naming the engine that compressed.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runtimeOptionsFromEnv } from '../bin/environment.js';
import {
  readFrameContentSize,
  zstdCompressFrame,
  zstdCompressStream,
  zstdDecompress,
  zstdFrameLengths,
} from '../lib/codecs/zstd.js';
import { zstdEngineName } from '../lib/codecs/zstd-engines.js';
import { dependencyVersions } from '../lib/version.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');
const TEXT = readFileSync(path.join(DATA, 'wikipedia-2349.jsonl'));

function nativeLoads(): boolean {
  try {
    createRequire(import.meta.url)('zstd-napi/binding');
    return true;
  } catch {
    return false;
  }
}

async function collect(outputs: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const all: Uint8Array[] = [];
  for await (const output of outputs) all.push(output);
  return Buffer.concat(all);
}

describe.skipIf(!nativeLoads())('native zstd engine (zstd-napi installed and built)', () => {
  it('is the engine picked, and megadocs.json records it', () => {
    expect(zstdEngineName()).toMatch(/^zstd-napi \(libzstd \d+\.\d+\.\d+\)$/);
    expect(dependencyVersions()['zstd compressor']).toBe(zstdEngineName());
    process.env.MEGADOCS_ZSTD = 'zstd-codec';
    try {
      expect(zstdEngineName(runtimeOptionsFromEnv(process.env).zstdEngine)).toBe('zstd-codec');
    } finally {
      delete process.env.MEGADOCS_ZSTD;
    }
  });

  it.each([0, 1, 5_000, 2_000_000])(
    'compresses %i bytes into one frame that declares them and decodes exactly',
    async (size) => {
      const input = TEXT.subarray(0, size);
      const frame = await zstdCompressFrame(input, 3);
      expect(zstdFrameLengths(frame)).toEqual([frame.length]);
      expect(readFrameContentSize(frame)).toBe(size);
      expect(zstdDecompress(frame).equals(input)).toBe(true);
    },
  );

  it('writes the same bytes whatever the piece sizes, and compresses text at least 2.5x at level 3', async () => {
    const input = TEXT.subarray(0, 2_000_000);
    const oddPieces = function* () {
      for (let start = 0, size = 1; start < input.length; start += size, size = (size * 7) % 2_500_001) {
        yield input.subarray(start, start + size);
      }
    };
    const whole = await collect(zstdCompressStream([input], input.length, 3));
    const odd = await collect(zstdCompressStream(oddPieces(), input.length, 3));
    expect(Buffer.compare(whole, odd)).toBe(0);
    expect(whole.length).toBeLessThan(input.length / 2.5);
  });
});
