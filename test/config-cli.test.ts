// pack, generate and run hand their flags to the config parse functions: a bad value exits 2 with exactly the
// message the library gives for the same config, naming each flag and the command's --help.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGenerateConfig, parsePackConfig, parseRunConfig } from '../lib/config.js';
import { runCli, SHARED_DATA, tempDir } from './helpers/cli.js';

const INPUT = join(SHARED_DATA, 'fineweb-300.jsonl');
const SERVER = 'http://127.0.0.1:9/v1';

function messageOf(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('config errors on the command line', () => {
  it('pack: the library message, exit 2 (no RangeError for a huge --seq-len)', async () => {
    const out = await tempDir();
    const result = await runCli(['pack', INPUT, '--out', out, '--seq-len', '99999999999', '--tail', 'cut']);
    const expected = messageOf(() =>
      parsePackConfig({ inputs: [INPUT], out, seqLen: 99_999_999_999, tail: 'cut' }, 'the command line'),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`megadocs: ${expected}\n`);
    expect(result.stderr).toContain('"seqLen" (--seq-len): expected a number <= 16777216, got 99999999999');
    expect(result.stderr).toContain('(see megadocs pack --help)');
    const hashes = await runCli([
      'pack',
      INPUT,
      '--out',
      out,
      '--hashes',
      'sha1,md7',
      '--compression',
      'lz4',
    ]);
    expect(hashes.code).toBe(2);
    expect(hashes.stderr).toContain('"hashes" (--hashes): unsupported shard hash "md7"');
    expect(hashes.stderr).toContain('"compression" (--compression): unknown compression "lz4"');
  });

  it('generate: the library message, exit 2, --timeout named as the flag', async () => {
    const out = await tempDir();
    const result = await runCli(['generate', INPUT, '--out', out, '--llm', SERVER, '--timeout', '0']);
    const expected = messageOf(() =>
      parseGenerateConfig({ inputs: [INPUT], out, llm: [SERVER], timeoutSeconds: 0 }, 'the command line'),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`megadocs: ${expected}\n`);
    expect(result.stderr).toContain('"timeoutSeconds" (--timeout): expected a number >= 0.001, got 0');
    expect(result.stderr).toContain('(see megadocs generate --help)');
  });

  it('run: more --min-generations than --generations is refused before any request', async () => {
    const out = await tempDir();
    const flags = [
      '--out',
      out,
      '--llm',
      SERVER,
      '--model',
      'm',
      '--generations',
      '2',
      '--min-generations',
      '5',
    ];
    const result = await runCli(['run', INPUT, ...flags]);
    const expected = messageOf(() =>
      parseRunConfig(
        { inputs: [INPUT], out, llm: [SERVER], model: 'm', generations: 2, minGenerations: 5 },
        'the command line',
      ),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`megadocs: ${expected}\n`);
    expect(result.stderr).toContain('"minGenerations" (--min-generations): expected at most 2');
  });
});
