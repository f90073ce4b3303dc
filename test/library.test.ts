// The public API as the README shows it: the same chain the CLI builds, composed by hand from lib/index.ts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  expandInputs,
  inspectDataset,
  iterateMdsSamples,
  loadEncoder,
  mdsSink,
  packStage,
  readDocs,
  tokenizeStage,
} from '../lib/index.js';
import { SHARED_DATA, tempDir } from './helpers/cli.js';

describe('library API', () => {
  it('composes source -> tokenize -> pack -> MDS sink with .through(), as in the README', async () => {
    const out = await tempDir();
    const shards = await expandInputs([join(SHARED_DATA, 'fineweb-300.parquet')]);
    const summary = await readDocs(shards, { textField: 'text' })
      .through(tokenizeStage({ tokenizer: 'cl100k_base', workers: 0, eos: true, bos: false }))
      .through(packStage({ seqLen: 2048, tail: 'drop', boundaries: true }))
      .through((sequences) =>
        mdsSink({
          dir: out,
          dtype: 'uint32',
          boundaries: true,
          compression: 'zstd:3',
          shardSize: 1 << 26,
          hashes: ['sha1'],
        })(sequences),
      );
    expect(summary.samples).toBeGreaterThan(100);
    const report = await inspectDataset(out);
    expect(report.samples).toBe(summary.samples);

    const encoder = await loadEncoder('cl100k_base');
    let first: string | undefined;
    for await (const sample of iterateMdsSamples(out)) {
      expect((sample.tokens as Uint32Array).length).toBe(2048);
      expect((sample.boundaries as Uint32Array)[0]).toBe(0);
      first ??= encoder.decode(sample.tokens as Uint32Array);
    }
    const firstDoc = (await readDocs(shards).take(1).collect().toPromise(Promise))[0];
    expect(firstDoc && first?.startsWith(firstDoc.text.slice(0, 200))).toBe(true);
  });
});
