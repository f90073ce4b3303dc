// End to end: `megadocs run` (the built CLI) on real documents against the loopback OpenAI-compatible server;
// the shards are decoded and each megadoc must hold exactly its own document's generations, in order.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';
import { runCli, tempDir } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import {
  decodedParts,
  expectedMagaRewrites,
  expectedRephrases,
  expectedStretch,
  realInput,
  type SourceDoc,
  sampleDigest,
  samplesOf,
} from './helpers/run-output.js';

let server: OpenAiTestServer;
let encoder: Encoder;
let dir: string;
let input: { file: string; docs: SourceDoc[] };

beforeAll(async () => {
  server = await startOpenAiServer();
  encoder = await loadEncoder('o200k_base');
  dir = await tempDir('megadocs-run-');
  input = await realInput(dir, 16);
});
afterAll(() => server.close());

let runs = 0;
/** Runs the CLI into a fresh OUT; storage order and the synthetic stream only unless the args say otherwise. */
async function run(args: string[], order = ['--no-shuffle', '--real-epochs', '0']): Promise<string> {
  runs += 1;
  const out = join(dir, `out-${runs}`);
  const common = ['--llm', server.url, '--model', 'test-model', '--workers', '0', '--quiet'];
  const result = await runCli([
    'run',
    input.file,
    '--out',
    out,
    ...common,
    '--seq-len',
    '256',
    '--tail',
    'keep',
    ...order,
    ...args,
  ]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return out;
}

async function manifest(out: string) {
  return JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
}

describe('megadocs run: stitch', () => {
  it('writes each megadoc as its generations in index order, then the original, each part ending with EOS', async () => {
    const out = await run(['--generations', '3']);
    const expected = input.docs.flatMap((doc) => [...expectedRephrases(doc, 3), doc.text]);
    expect(await decodedParts(out, encoder)).toEqual(expected);
    const { status, command, stats } = await manifest(out);
    expect({ status, command }).toEqual({ status: 'complete', command: 'run' });
    expect(stats.assemble).toMatchObject({
      mode: 'stitch',
      documentsIn: 16,
      generations: 48,
      documentsOut: 16,
      dropped: {},
    });
    expect(stats.generate.requests).toMatchObject({ completed: 16, replayed: 0, failed: 0 });
    const realTokens = input.docs.reduce((sum, doc) => sum + encoder.encode(doc.text).length + 1, 0);
    expect(stats.tokens.real).toBe(realTokens);
    expect(stats.tokens.expansionFactor).toBeCloseTo(stats.tokens.synthetic / realTokens, 10);
    expect(stats.mix).toMatchObject({
      streams: 'mixed',
      realEpochs: 0,
      realTokensSeen: 0,
      syntheticWeight: 1,
    });
    expect(stats.output.tokens).toBe(stats.tokens.synthetic);
  });

  it('puts the original first, or joins the parts into one text with --separator text', async () => {
    const front = await run(['--generations', '2', '--original', 'front']);
    expect(await decodedParts(front, encoder)).toEqual(
      input.docs.flatMap((doc) => [doc.text, ...expectedRephrases(doc, 2)]),
    );
    const joined = await run(['--generations', '2', '--separator', 'text', '--join', '\n\n']);
    expect(await decodedParts(joined, encoder)).toEqual(
      input.docs.map((doc) => [...expectedRephrases(doc, 2), doc.text].join('\n\n')),
    );
  });
});

describe('megadocs run: MAGA and stretch', () => {
  it('stitches the genre/audience rewrites that survive cleaning, in pair order, before the original', async () => {
    const out = await run(['--recipe', 'maga', '--generations', '3', '--min-generations', '2']);
    const expected: string[] = [];
    let dropped = 0;
    for (const doc of input.docs) {
      const rewrites = await expectedMagaRewrites(doc, 3);
      if (rewrites.length < 2) dropped += 1;
      else expected.push(...rewrites, doc.text);
    }
    expect(await decodedParts(out, encoder)).toEqual(expected);
    const { stats } = await manifest(out);
    expect(stats.assemble.documentsOut).toBe(16 - dropped);
    expect(stats.generate.requests.completed).toBe(16 * 4);
  });

  it('interleaves the original pieces with wrapped rationales in split order', async () => {
    const out = await run(['--recipe', 'stretch', '--assemble', 'stretch', '--generations', '3']);
    expect(await decodedParts(out, encoder)).toEqual(
      input.docs.map((doc) => expectedStretch(doc, 3, encoder)),
    );
  });
});

describe('megadocs run: none, separate streams and the materialised mixture', () => {
  it('writes OUT/real/ (the originals in order), OUT/synthetic/ (scattered separate documents) and mixture.json', async () => {
    const out = await run(
      ['--generations', '2', '--assemble', 'none', '--shuffle-window', '8', '--streams', 'separate'],
      ['--no-shuffle', '--real-epochs', '4', '--synthetic-weight', '0.75'],
    );
    expect(await decodedParts(join(out, 'real'), encoder)).toEqual(input.docs.map((doc) => doc.text));
    const synthetic = await decodedParts(join(out, 'synthetic'), encoder);
    const expected = input.docs.flatMap((doc) => [...expectedRephrases(doc, 2), doc.text]);
    expect([...synthetic].sort()).toEqual([...expected].sort());
    expect(synthetic).not.toEqual(expected);
    const mixture = JSON.parse(await readFile(join(out, 'mixture.json'), 'utf8'));
    const realSamples = (await samplesOf(join(out, 'real'))).length;
    const syntheticSamples = (await samplesOf(join(out, 'synthetic'))).length;
    expect(mixture.streams.real).toMatchObject({
      local: 'real',
      samples: realSamples,
      choose: realSamples * 4,
      repeat: 4,
    });
    expect(mixture.streams.synthetic).toMatchObject({
      local: 'synthetic',
      samples: syntheticSamples,
      choose: realSamples * 12,
    });
    expect(mixture.syntheticWeight).toBeCloseTo(0.75, 10);
  });

  it('gives each stream its own documents in storage order: the originals, and the megadocs holding them', async () => {
    const out = await run(['--generations', '2', '--streams', 'separate'], ['--no-shuffle']);
    expect(await decodedParts(join(out, 'real'), encoder)).toEqual(input.docs.map((doc) => doc.text));
    expect(await decodedParts(join(out, 'synthetic'), encoder)).toEqual(
      input.docs.flatMap((doc) => [...expectedRephrases(doc, 2), doc.text]),
    );
  });

  it('mixes E passes of the real sequences with synthetic ones to weight w, shuffled by the seed', async () => {
    const options = ['--generations', '2', '--real-epochs', '2', '--synthetic-weight', '0.6'];
    const separate = await run([...options, '--streams', 'separate'], []);
    const realDigests = new Set((await samplesOf(join(separate, 'real'))).map(sampleDigest));
    const syntheticDigests = new Set((await samplesOf(join(separate, 'synthetic'))).map(sampleDigest));
    const mixed = await samplesOf(await run(options, []));
    const real = mixed.filter((sample) => realDigests.has(sampleDigest(sample)));
    const synthetic = mixed.filter((sample) => syntheticDigests.has(sampleDigest(sample)));
    expect(real.length + synthetic.length).toBe(mixed.length);
    expect(real.length).toBe(2 * realDigests.size);
    expect(synthetic.length).toBe(Math.round((2 * realDigests.size * 0.6) / 0.4));
    const counts = new Map<string, number>();
    for (const sample of real) counts.set(sampleDigest(sample), (counts.get(sampleDigest(sample)) ?? 0) + 1);
    expect([...counts.values()].every((count) => count === 2)).toBe(true);
    // Shuffled: the real sequences are spread over the output, not in two runs of storage order.
    const positions = mixed.flatMap((sample, position) =>
      realDigests.has(sampleDigest(sample)) ? [position] : [],
    );
    expect(positions).not.toEqual(Array.from({ length: real.length }, (_v, i) => i));
    const reseeded = await samplesOf(await run([...options, '--shuffle-seed', '7'], []));
    expect(reseeded.map(sampleDigest).sort()).toEqual(mixed.map(sampleDigest).sort());
    expect(reseeded.map(sampleDigest)).not.toEqual(mixed.map(sampleDigest));
  });
});

describe('megadocs run: ranks', () => {
  it('splits the input shards among --world-size workers, each writing its own OUT/rank-NNNNN/', async () => {
    const second = await realInput(dir, 24, 'fineweb-300.jsonl', 'input-2.jsonl');
    const out = join(dir, 'ranked');
    const common = [
      '--llm',
      server.url,
      '--model',
      'test-model',
      '--workers',
      '0',
      '--quiet',
      '--generations',
      '2',
    ];
    const order = ['--seq-len', '256', '--tail', 'keep', '--no-shuffle', '--real-epochs', '0'];
    for (const rank of ['0', '1']) {
      const result = await runCli([
        'run',
        input.file,
        second.file,
        '--out',
        out,
        ...common,
        ...order,
        '--world-size',
        '2',
        '--rank',
        rank,
      ]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    }
    const byRank = [
      await decodedParts(join(out, 'rank-00000'), encoder),
      await decodedParts(join(out, 'rank-00001'), encoder),
    ];
    const megadocsOf = (docs: SourceDoc[]) => docs.flatMap((doc) => [...expectedRephrases(doc, 2), doc.text]);
    // Each file went whole to one rank; together the ranks hold every megadoc once.
    expect([...byRank].sort((a, b) => a.length - b.length)).toEqual([
      megadocsOf(input.docs),
      megadocsOf(second.docs),
    ]);
  });
});

describe('megadocs run: config file', () => {
  it('runs from --config, with flags given on the command line overriding the file', async () => {
    const out = join(dir, 'from-config');
    const config = join(dir, 'run.json');
    await writeFile(
      config,
      JSON.stringify({
        inputs: [input.file],
        out,
        llm: [server.url],
        model: 'test-model',
        generations: 5,
        workers: 1,
        seqLen: 256,
        tail: 'keep',
        shuffle: false,
        realEpochs: 0,
      }),
    );
    const result = await runCli(['run', '--config', config, '--generations', '2', '--quiet', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout.toString());
    expect(summary.assemble.generations).toBe(32);
    expect(await decodedParts(out, encoder)).toEqual(
      input.docs.flatMap((doc) => [...expectedRephrases(doc, 2), doc.text]),
    );
    expect((await manifest(out)).options).toMatchObject({ generations: 2, seqLen: 256, shuffle: false });
  });

  it('exits 2 with every problem of a bad config named by its JSON path', async () => {
    const config = join(dir, 'bad.json');
    await writeFile(
      config,
      JSON.stringify({
        inputs: [input.file],
        out: join(dir, 'bad'),
        llm: [server.url],
        assemble: 'stich',
        seqlen: 5,
      }),
    );
    const result = await runCli(['run', '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`megadocs: ${config}: 2 problems in the run config`);
    expect(result.stderr).toContain(
      '"assemble" (--assemble): expected one of "stitch", "stretch", "none", got "stich"',
    );
    expect(result.stderr).toContain('unknown key "seqlen" (did you mean "seqLen"?)');
  });
});
