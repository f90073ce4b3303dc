// `--token-dtype`: int32 ids in MDS (`ndarray:int32`, as llm-foundry's converter writes), memmap and Megatron,
// the same ids as the default dtype, read back by the test readers, fed and decoded (feed, inspect), recorded in megadocs.json;
// a dtype that cannot hold the vocabulary refused before any work; and BOS/EOS shown in the pack summary.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { iterateMdsSamples, readMdsIndex } from '../lib/sinks/mds-reader.js';
import { runCli, tempDir } from './helpers/cli.js';
import { readMegatronPair } from './helpers/megatron-reader.js';
import { readMemmap } from './helpers/memmap-reader.js';
import { npmModelDir } from './helpers/npm-tokenizers.js';

const INPUT = path.resolve(import.meta.dirname, '../fixtures/web-sample.jsonl');

/** `megadocs pack` of the fixture with r50k_base (50,257 tokens: uint16 by default) into a new directory. */
async function pack(format: string, ...extra: string[]) {
  const out = await tempDir(`megadocs-dtype-${format}-`);
  const args = ['pack', INPUT, '--out', out, '--format', format, '--tokenizer', 'r50k_base'];
  const result = await runCli([...args, '--seq-len', '64', '--workers', '0', '--quiet', ...extra]);
  return { out, ...result };
}

async function mdsIds(dir: string): Promise<{ encodings: string[]; ids: number[][]; arrays: string[] }> {
  const index = await readMdsIndex(dir);
  const ids: number[][] = [];
  const arrays = new Set<string>();
  for await (const sample of iterateMdsSamples(dir)) {
    const tokens = sample.tokens as Uint16Array | Int32Array;
    arrays.add(tokens.constructor.name);
    ids.push(Array.from(tokens));
  }
  return { encodings: index.shards[0]!.column_encodings, ids, arrays: [...arrays] };
}

/** `megadocs feed DIR` (uint32 ids in storage order): what a trainer reading the pipe gets. */
const fed = async (dir: string) => {
  const result = await runCli(['feed', dir]);
  expect([result.code, result.stderr]).toEqual([0, '']);
  return result.stdout;
};

const decodedSamples = async (dir: string) => {
  const inspected = await runCli(['inspect', dir, '--decode', '3']);
  expect(inspected.code).toBe(0);
  return inspected.stdout
    .toString()
    .split(/--- sample \d+ ---\n/)
    .slice(1);
};

describe('--token-dtype int32', () => {
  it('writes MDS ndarray:int32 with the ids of the default uint16, decoded by inspect', async () => {
    const [narrow, wide] = await Promise.all([pack('mds'), pack('mds', '--token-dtype', 'int32')]);
    expect(wide.stderr).toBe('');
    expect(wide.code).toBe(0);
    const [before, after] = await Promise.all([mdsIds(narrow.out), mdsIds(wide.out)]);
    expect(before.encodings).toEqual(['ndarray:uint16']);
    expect(after.encodings).toEqual(['ndarray:int32']);
    expect(after.arrays).toEqual(['Int32Array']);
    expect(after.ids.length).toBeGreaterThan(0);
    expect(after.ids).toEqual(before.ids);
    const decoded = await decodedSamples(wide.out);
    expect(decoded).toHaveLength(3);
    expect(decoded).toEqual(await decodedSamples(narrow.out));
    const bytes = await fed(wide.out);
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.equals(await fed(narrow.out))).toBe(true);
    const manifest = JSON.parse(await readFile(path.join(wide.out, 'megadocs.json'), 'utf8'));
    expect(JSON.stringify(manifest)).toContain('"tokenDtype":"int32"');
  });

  it('writes a memmap of int32 ids (memmap.json dtype int32) and a Megatron pair with dtype code 4', async () => {
    const [memmap, memmapWide, megatron, megatronWide] = await Promise.all([
      pack('memmap'),
      pack('memmap', '--token-dtype', 'int32'),
      pack('megatron'),
      pack('megatron', '--token-dtype', 'int32'),
    ]);
    for (const result of [memmapWide, megatronWide]) expect([result.code, result.stderr]).toEqual([0, '']);
    const [narrowRows, wideRows] = await Promise.all([readMemmap(memmap.out), readMemmap(memmapWide.out)]);
    expect(wideRows.index.dtype).toBe('int32');
    expect((await readFile(path.join(memmapWide.out, 'part-00000.npy'))).length).toBe(
      wideRows.index.files[0]!.tokens * 4,
    );
    expect(wideRows.sequences).toEqual(narrowRows.sequences);
    expect(await decodedSamples(memmapWide.out)).toEqual(await decodedSamples(memmap.out));
    expect((await fed(memmapWide.out)).equals(await fed(memmap.out))).toBe(true);
    const [narrowPair, widePair] = await Promise.all(
      [megatron, megatronWide].map(({ out }) => readMegatronPair(path.join(out, 'megadocs'))),
    );
    expect([narrowPair!.dtypeCode, widePair!.dtypeCode]).toEqual([8, 4]);
    expect(widePair!.entries).toEqual(narrowPair!.entries);
  });

  it('refuses a dtype that cannot hold the vocabulary, and uint32 for Megatron, before writing anything', async () => {
    const out = await tempDir('megadocs-dtype-refused-');
    const narrow = await runCli(['pack', INPUT, '--out', out, '--token-dtype', 'uint16', '--quiet']);
    expect(narrow.code).not.toBe(0);
    expect(narrow.stderr).toContain('--token-dtype uint16 cannot hold');
    expect(narrow.stderr).toContain('200,007 tokens');
    expect(existsSync(path.join(out, 'megadocs.json'))).toBe(false);
    const megatron = await pack('megatron', '--token-dtype', 'uint32');
    expect(megatron.code).not.toBe(0);
    expect(megatron.stderr).toContain("Megatron's .idx has no uint32 dtype code");
  });
});

describe('the pack summary', () => {
  it('shows the BOS and EOS written around each document', async () => {
    const out = await tempDir('megadocs-summary-');
    const args = ['pack', INPUT, '--seq-len', '64', '--workers', '0', '--tokenizer'];
    const [named, llama2] = await Promise.all([
      runCli([...args, 'r50k_base', '--out', path.join(out, 'r50k')]),
      runCli([...args, npmModelDir('llama2'), '--out', path.join(out, 'llama2'), '--json']),
    ]);
    expect(named.code).toBe(0);
    expect(named.stderr).toMatch(/special tokens +no BOS, EOS <\|endoftext\|> \(50256\) after each document/);
    expect(llama2.code).toBe(0);
    expect(llama2.stderr).toMatch(
      /special tokens +BOS <s> \(1\) before each document, EOS <\/s> \(2\) after each document/,
    );
    expect(JSON.parse(llama2.stdout.toString()).documentTokens).toEqual({
      bos: { token: '<s>', id: 1 },
      eos: { token: '</s>', id: 2 },
    });
  });
});
