// End to end: `megadocs run --llm local:MODEL.gguf` generates in-process with the real stories260K model
// (../shared/models), and each megadoc still ends with its own original, in input order.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import { REPO_ROOT, runCli, tempDir } from './helpers/cli.js';
import { decodedParts, realInput } from './helpers/run-output.js';

const MODEL = resolve(REPO_ROOT, '../shared/models/stories260K.gguf');

describe('megadocs run with a local model', () => {
  it('stitches the local generations of each document before its original', async () => {
    const dir = await tempDir('megadocs-run-local-');
    const { file, docs } = await realInput(dir, 4);
    const out = join(dir, 'out');
    const result = await runCli([
      'run',
      file,
      '--out',
      out,
      '--llm',
      `local:${MODEL}`,
      '--max-tokens',
      '8',
      '--max-input-tokens',
      '48',
      '--generations',
      '2',
      '--concurrency',
      '2',
      '--workers',
      '0',
      '--seq-len',
      '128',
      '--tail',
      'keep',
      '--no-shuffle',
      '--real-epochs',
      '0',
      '--quiet',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.options.model).toBe('stories260K.gguf');
    expect(manifest.stats.generate.requests).toMatchObject({ completed: 4, failed: 0 });
    expect(manifest.stats.assemble).toMatchObject({ documentsIn: 4, generations: 8, documentsOut: 4 });
    const parts = await decodedParts(out, await loadEncoder('o200k_base'));
    expect(parts).toHaveLength(4 * 3);
    expect(parts.filter((_part, index) => index % 3 === 2)).toEqual(docs.map((doc) => doc.text));
    expect(parts.filter((_part, index) => index % 3 !== 2).every((text) => text.trim().length > 0)).toBe(
      true,
    );
  });
});
