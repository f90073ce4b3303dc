// `--format megatron`: PREFIX.bin + PREFIX.idx read back with an independent reader (test/helpers), each document
// one entry ending in EOD, dtype by vocabulary, refusals, kill -9 and rerun, inspect's checks; `run`: each
// megadoc one entry, mixed or separate with the --data-path weights.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { toAsyncIterable } from '../lib/stream.js';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';
import { runCli, SHARED_DATA, startCli, tempDir, waitCli } from './helpers/cli.js';
import { readMegatronPair } from './helpers/megatron-reader.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { expectedRephrases, realInput, type SourceDoc } from './helpers/run-output.js';

const record = { textField: 'text', idField: 'id', onError: 'fail' as const };

/** Each document of `input` as its tokens followed by EOS: what every entry must hold. */
async function expectedEntries(input: string, tokenizer: string): Promise<Uint32Array[]> {
  const encoder = await loadEncoder(tokenizer);
  const entries: Uint32Array[] = [];
  for await (const doc of toAsyncIterable(readDocs(await expandInputs([input]), record))) {
    entries.push(Uint32Array.from([...encoder.encode(doc.text), encoder.eosId]));
  }
  return entries;
}

describe('megadocs pack --format megatron', () => {
  it('writes each document as one entry ending in EOD, uint16 for a vocabulary under 65,500', async () => {
    const out = await tempDir();
    const input = join(SHARED_DATA, 'fineweb-300.jsonl');
    const result = await runCli([
      'pack',
      input,
      '--out',
      out,
      '--format',
      'megatron',
      '--tokenizer',
      'r50k_base',
      '--quiet',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const pair = await readMegatronPair(join(out, 'megadocs'));
    expect(pair.dtypeCode).toBe(8);
    expect(pair.entries).toEqual(await expectedEntries(input, 'r50k_base'));
    const files = await readdir(out);
    expect(files.filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('takes int32 for a larger vocabulary and names the pair by --prefix', async () => {
    const out = await tempDir();
    const input = join(SHARED_DATA, 'fineweb-300.jsonl');
    const args = ['pack', input, '--out', out, '--format', 'megatron', '--prefix', 'web', '--quiet'];
    expect((await runCli(args)).code).toBe(0);
    const pair = await readMegatronPair(join(out, 'web'));
    expect(pair.dtypeCode).toBe(4);
    expect(pair.entries).toEqual(await expectedEntries(input, 'o200k_base'));
  });

  it('refuses packing options that have nothing to act on, and a prefix that is a path', async () => {
    const out = await tempDir();
    const input = join(SHARED_DATA, 'fineweb-300.jsonl');
    for (const [flag, says] of [
      [['--boundaries'], /boundaries.*whole document/],
      [['--tail', 'pad'], /tail.*packs at training time/],
      [['--prefix', 'a/b'], /prefix.*plain file name/],
    ] as const) {
      const result = await runCli(['pack', input, '--out', out, '--format', 'megatron', ...flag]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(says);
    }
  });

  it('after kill -9 mid-run leaves no .idx, and a rerun writes the same bytes as one uninterrupted run', async () => {
    const input = join(SHARED_DATA, 'wikipedia-2349.jsonl.zst');
    const args = (out: string) => [
      'pack',
      input,
      '--out',
      out,
      '--format',
      'megatron',
      '--workers',
      '1',
      '--quiet',
    ];
    const whole = await tempDir();
    expect((await runCli(args(whole))).code).toBe(0);
    const killedOut = await tempDir();
    const child = startCli(args(killedOut));
    const exited = waitCli(child);
    let temporaryBin = false;
    while (!temporaryBin && child.exitCode === null) {
      temporaryBin = (await readdir(killedOut)).some((name) => name.startsWith('megadocs.bin.'));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    const killed = await exited;
    const files = await readdir(killedOut);
    if (killed.signal === 'SIGKILL') expect(files).not.toContain('megadocs.idx');
    expect((await runCli(args(killedOut))).code).toBe(0);
    for (const name of ['megadocs.bin', 'megadocs.idx']) {
      expect((await readFile(join(killedOut, name))).equals(await readFile(join(whole, name)))).toBe(true);
    }
    expect((await readdir(killedOut)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('inspect validates the pair and names a damaged one', async () => {
    const out = await tempDir();
    const input = join(SHARED_DATA, 'fineweb-300.jsonl');
    expect(
      (
        await runCli([
          'pack',
          input,
          '--out',
          out,
          '--format',
          'megatron',
          '--tokenizer',
          'r50k_base',
          '--quiet',
        ])
      ).code,
    ).toBe(0);
    const good = await runCli(['inspect', out, '--json', '--decode', '1']);
    expect(good.code).toBe(0);
    const report = JSON.parse(good.stdout.toString());
    const entries = await expectedEntries(input, 'r50k_base');
    expect(report).toMatchObject({ format: 'megatron', valid: true, samples: entries.length });
    expect(report.tokens).toBe(entries.reduce((sum, entry) => sum + entry.length, 0));
    expect(report.decoded[0].text.length).toBeGreaterThan(0);
    const bin = join(out, 'megadocs.bin');
    await writeFile(bin, (await readFile(bin)).subarray(0, 1000));
    const bad = await runCli(['inspect', out, '--json']);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout.toString() + bad.stderr).toMatch(/megadocs\.bin.*1000 bytes/);
  });
});

describe('megadocs run --format megatron', () => {
  let server: OpenAiTestServer;
  let encoder: Encoder;
  let dir: string;
  let input: { file: string; docs: SourceDoc[] };

  beforeAll(async () => {
    server = await startOpenAiServer({ latency: { uniform: [1, 10] } });
    encoder = await loadEncoder('o200k_base');
    dir = await tempDir('megadocs-run-megatron-');
    input = await realInput(dir, 12);
  });
  afterAll(() => server.close());

  const runArgs = (out: string, args: string[]) => [
    'run',
    input.file,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--workers',
    '0',
    '--format',
    'megatron',
    '--generations',
    '2',
    ...args,
  ];
  const withEos = (text: string) => [...encoder.encode(text), encoder.eosId];
  const megadocOf = (doc: SourceDoc) =>
    Uint32Array.from([...expectedRephrases(doc, 2), doc.text].flatMap(withEos));
  const digest = (tokens: Uint32Array) => Buffer.from(tokens.buffer).toString('base64');

  it('writes each megadoc as ONE entry, its parts each ending with EOD, in storage order', async () => {
    const out = join(dir, 'stored');
    const result = await runCli(runArgs(out, ['--no-shuffle', '--real-epochs', '0', '--quiet']));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const pair = await readMegatronPair(join(out, 'megadocs'));
    expect(pair.dtypeCode).toBe(4);
    expect(pair.entries).toEqual(input.docs.map(megadocOf));
  });

  it('mixes whole real documents and whole megadocs in a seeded order; kill -9 and rerun give the same bytes', async () => {
    const args = ['--real-epochs', '2', '--shuffle-seed', '5', '--quiet'];
    const whole = join(dir, 'mixed');
    expect((await runCli(runArgs(whole, args))).code).toBe(0);
    const pair = await readMegatronPair(join(whole, 'megadocs'));
    const expected = [
      ...input.docs.map((doc) => Uint32Array.from(withEos(doc.text))),
      ...input.docs.map((doc) => Uint32Array.from(withEos(doc.text))),
      ...input.docs.map(megadocOf),
    ];
    expect(pair.entries.map(digest).sort()).toEqual(expected.map(digest).sort());
    expect(pair.entries.map(digest)).not.toEqual(expected.map(digest));

    const killedOut = join(dir, 'mixed-killed');
    const received = server.stats.received;
    const child = startCli(runArgs(killedOut, [...args, '--concurrency', '1']));
    const exited = waitCli(child);
    while (server.stats.received < received + 4 && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    await exited;
    expect(await readdir(killedOut)).not.toContain('megadocs.idx');
    const rerun = await runCli(runArgs(killedOut, args));
    expect(rerun.code).toBe(0);
    for (const name of ['megadocs.bin', 'megadocs.idx']) {
      expect((await readFile(join(killedOut, name))).equals(await readFile(join(whole, name)))).toBe(true);
    }
  });

  it('--streams separate writes real/ and synthetic/ pairs and the --data-path line for w and E', async () => {
    const out = join(dir, 'separate');
    const result = await runCli(runArgs(out, ['--streams', 'separate', '--synthetic-weight', '0.6']));
    expect(result.code).toBe(0);
    const real = await readMegatronPair(join(out, 'real', 'megadocs'));
    const synthetic = await readMegatronPair(join(out, 'synthetic', 'megadocs'));
    expect(real.entries.map(digest).sort()).toEqual(
      input.docs.map((doc) => digest(Uint32Array.from(withEos(doc.text)))).sort(),
    );
    expect(synthetic.entries.map(digest).sort()).toEqual(
      input.docs.map((doc) => digest(megadocOf(doc))).sort(),
    );
    const mixture = JSON.parse(await readFile(join(out, 'mixture.json'), 'utf8'));
    const { weights, dataPath, trainTokens } = mixture.megatron;
    expect(dataPath).toBe(`${weights.real} real/megadocs ${weights.synthetic} synthetic/megadocs`);
    expect(weights.synthetic).toBeCloseTo(0.6, 1);
    const realTokens = real.entries.reduce((sum, entry) => sum + entry.length, 0);
    expect(trainTokens * weights.real).toBeCloseTo(realTokens, -1);
    const printed = result.stdout.toString() + result.stderr;
    expect(printed).toContain(`${weights.real} ${join(out, 'real', 'megadocs')} ${weights.synthetic}`);
  });

  it('refuses --boundaries', async () => {
    const result = await runCli(runArgs(join(dir, 'refused'), ['--boundaries']));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/boundaries.*whole document/);
  });
});

describe('megadocs merge of --rank Megatron outputs', () => {
  it('writes one pair holding the documents of a one-rank run, and megadocs.json for the merged dataset', async () => {
    const inputs = [join(SHARED_DATA, 'fineweb-300.jsonl'), join(SHARED_DATA, 'wikipedia-2349.jsonl')];
    const common = ['--format', 'megatron', '--tokenizer', 'r50k_base', '--quiet'];
    const single = await tempDir();
    expect((await runCli(['pack', ...inputs, '--out', single, ...common])).code).toBe(0);
    const ranked = await tempDir();
    for (const rank of ['0', '1']) {
      const args = ['pack', ...inputs, '--out', ranked, ...common, '--rank', rank, '--world-size', '2'];
      expect((await runCli(args)).code).toBe(0);
    }
    const merged = await runCli(['merge', ranked, '--json']);
    expect(merged.code).toBe(0);
    expect(JSON.parse(merged.stdout.toString())).toMatchObject({ format: 'megatron', ranks: 2, shards: 1 });
    const digest = (tokens: Uint32Array) => Buffer.from(tokens.buffer).toString('base64');
    const one = await readMegatronPair(join(single, 'megadocs'));
    const both = await readMegatronPair(join(ranked, 'megadocs'));
    const ranks = await Promise.all(
      ['rank-00000', 'rank-00001'].map((rank) => readMegatronPair(join(ranked, rank, 'megadocs'))),
    );
    expect(ranks.every((rank) => rank.entries.length > 0)).toBe(true);
    expect(both.entries).toEqual(ranks.flatMap((rank) => rank.entries));
    expect(both.entries.map(digest).sort()).toEqual(one.entries.map(digest).sort());
    const manifest = JSON.parse(await readFile(join(ranked, 'megadocs.json'), 'utf8'));
    expect(manifest).toMatchObject({
      command: 'merge',
      format: 'megatron',
      options: { tokenizer: 'r50k_base' },
    });
    const inspected = await runCli(['inspect', ranked, '--json', '--decode', '1']);
    expect(inspected.code).toBe(0);
    expect(JSON.parse(inspected.stdout.toString())).toMatchObject({
      valid: true,
      samples: one.entries.length,
    });
    const again = await runCli(['merge', ranked]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/already complete/);
  });
});

describe('megadocs feed of a Megatron pair', () => {
  it('streams every entry in storage order (the .bin bytes), and shuffled as the same entries', async () => {
    const out = await tempDir();
    const input = join(SHARED_DATA, 'wikipedia-2349.jsonl');
    const args = ['pack', input, '--out', out, '--format', 'megatron', '--tokenizer', 'r50k_base', '--quiet'];
    expect((await runCli(args)).code).toBe(0);
    const fed = await runCli(['feed', out, '--dtype', 'uint16']);
    expect(fed.code).toBe(0);
    expect(fed.stdout.equals(await readFile(join(out, 'megadocs.bin')))).toBe(true);
    const shuffled = await runCli([
      'feed',
      out,
      '--dtype',
      'uint16',
      '--shuffle',
      '--seed',
      '3',
      '--window-shards',
      '1',
    ]);
    expect(shuffled.code).toBe(0);
    expect(shuffled.stdout.length).toBe(fed.stdout.length);
    expect(shuffled.stdout.equals(fed.stdout)).toBe(false);
  });
});
