// `--format memmap`: part-NNNNN.npy rows read back with an independent reader (test/helpers): the same sequences
// as the MDS output of the same command and seed, the document spans, kill -9 and rerun, refusals, inspect.
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iterateMdsSamples } from '../lib/sinks/mds-reader.js';
import { DocumentSpans } from '../lib/sinks/memmap-spans.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { toAsyncIterable } from '../lib/stream.js';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import { CLI, REPO_ROOT, runCli, SHARED_DATA, startCli, tempDir, waitCli } from './helpers/cli.js';
import { readMemmap } from './helpers/memmap-reader.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { realInput } from './helpers/run-output.js';

const INPUT = join(SHARED_DATA, 'fineweb-300.jsonl');
const record = { textField: 'text', idField: 'id', onError: 'fail' as const };

async function mdsSequences(dir: string): Promise<Uint32Array[]> {
  const sequences: Uint32Array[] = [];
  for await (const sample of iterateMdsSamples(dir))
    sequences.push(Uint32Array.from(sample.tokens as ArrayLike<number>));
  return sequences;
}

describe('megadocs pack --format memmap', () => {
  const packArgs = (out: string, format: string, extra: string[] = []) => [
    'pack',
    INPUT,
    '--out',
    out,
    '--format',
    format,
    '--tokenizer',
    'r50k_base',
    '--seq-len',
    '128',
    '--shard-size',
    '64KiB',
    '--quiet',
    ...extra,
  ];

  it('writes the MDS output sequences as whole uint16 rows in parts, with each document span', async () => {
    const memmap = await tempDir();
    const mds = await tempDir();
    const result = await runCli(packArgs(memmap, 'memmap'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((await runCli(packArgs(mds, 'mds'))).code).toBe(0);
    const dataset = await readMemmap(memmap);
    expect(dataset.index).toMatchObject({ dtype: 'uint16', seq_len: 128 });
    expect(dataset.index.files.length).toBeGreaterThan(2);
    expect(dataset.sequences).toEqual(await mdsSequences(mds));
    // Each document's spans, in order, give back its tokens and EOS (all but the dropped tail).
    const encoder = await loadEncoder('r50k_base');
    const pieces = new Map<string, number[]>();
    for (const part of dataset.parts) {
      for (const span of part.spans) {
        const tokens = pieces.get(span.id) ?? [];
        tokens.push(...part.tokens.subarray(span.start, span.end));
        pieces.set(span.id, tokens);
      }
    }
    const docs = [];
    for await (const doc of toAsyncIterable(readDocs(await expandInputs([INPUT]), record))) docs.push(doc);
    const whole = docs.slice(0, -1).filter((doc) => pieces.has(doc.id));
    expect(whole.length).toBeGreaterThan(docs.length - 3);
    for (const doc of whole) expect(pieces.get(doc.id)).toEqual([...encoder.encode(doc.text), encoder.eosId]);
  });

  it('refuses --tail keep and --boundaries', async () => {
    const out = await tempDir();
    for (const [flag, says] of [
      [['--tail', 'keep'], /tail.*whole sequences/],
      [['--boundaries'], /boundaries.*csv\.gz/],
    ] as const) {
      const result = await runCli(packArgs(out, 'memmap', [...flag]));
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(says);
    }
  });

  it('after kill -9 leaves no memmap.json, and a rerun writes the same bytes', async () => {
    const input = join(SHARED_DATA, 'wikipedia-2349.jsonl.zst');
    const args = (out: string) => [
      'pack',
      input,
      '--out',
      out,
      '--format',
      'memmap',
      '--seq-len',
      '256',
      '--shard-size',
      '256KiB',
      '--workers',
      '1',
      '--quiet',
    ];
    const whole = await tempDir();
    expect((await runCli(args(whole))).code).toBe(0);
    const killedOut = await tempDir();
    const child = startCli(args(killedOut));
    const exited = waitCli(child);
    let started = false;
    while (!started && child.exitCode === null) {
      started = (await readdir(killedOut)).some((name) => name.startsWith('part-'));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    if ((await exited).signal === 'SIGKILL') expect(await readdir(killedOut)).not.toContain('memmap.json');
    expect((await runCli(args(killedOut))).code).toBe(0);
    const names = (await readdir(whole)).filter((name) => name.startsWith('part-') || name === 'memmap.json');
    expect(names.length).toBeGreaterThan(3);
    for (const name of names) {
      expect((await readFile(join(killedOut, name))).equals(await readFile(join(whole, name)))).toBe(true);
    }
    expect((await readdir(killedOut)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('inspect validates the parts and names a damaged one', async () => {
    const out = await tempDir();
    expect((await runCli(packArgs(out, 'memmap'))).code).toBe(0);
    const good = await runCli(['inspect', out, '--json', '--decode', '1']);
    expect(good.code).toBe(0);
    const report = JSON.parse(good.stdout.toString());
    const dataset = await readMemmap(out);
    expect(report).toMatchObject({
      format: 'memmap',
      valid: true,
      samples: dataset.sequences.length,
      tokens: dataset.index.tokens,
      minTokens: 128,
      maxTokens: 128,
    });
    expect(report.decoded[0].text.length).toBeGreaterThan(0);
    const part = join(out, 'part-00001.npy');
    await writeFile(part, (await readFile(part)).subarray(0, 1000));
    const bad = await runCli(['inspect', out, '--json']);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout.toString() + bad.stderr).toMatch(/part-00001\.npy.*1000 bytes/);
  });
});

describe('megadocs run --format memmap', () => {
  let server: OpenAiTestServer;
  let dir: string;
  let input: string;

  beforeAll(async () => {
    server = await startOpenAiServer();
    dir = await tempDir('megadocs-run-memmap-');
    ({ file: input } = await realInput(dir, 12));
  });
  afterAll(() => server.close());

  const runArgs = (out: string, format: string) => [
    'run',
    input,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--workers',
    '0',
    '--generations',
    '2',
    '--seq-len',
    '64',
    '--real-epochs',
    '2',
    '--synthetic-weight',
    '0.5',
    '--shuffle-seed',
    '9',
    '--shard-size',
    '4KiB',
    '--quiet',
    '--format',
    format,
  ];

  it('writes the same shuffled sequences as the MDS output of the same command and seed, with spans', async () => {
    const memmap = join(dir, 'memmap');
    const mds = join(dir, 'mds');
    const result = await runCli(runArgs(memmap, 'memmap'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((await runCli(runArgs(mds, 'mds'))).code).toBe(0);
    const dataset = await readMemmap(memmap);
    expect(dataset.index.dtype).toBe('uint32');
    expect(dataset.index.files.length).toBeGreaterThan(1);
    expect(dataset.sequences).toEqual(await mdsSequences(mds));
    // --tail drop: every token of every part lies in exactly one span of a megadoc's part.
    for (const part of dataset.parts) {
      expect(part.spans.reduce((sum, span) => sum + span.end - span.start, 0)).toBe(part.tokens.length);
      expect(part.spans.every((span) => /\/\d+$/.test(span.id))).toBe(true);
    }
  });

  it('--streams separate writes real/ and synthetic/ memmaps holding the MDS streams, and mixture.json', async () => {
    const memmap = join(dir, 'memmap-separate');
    const mds = join(dir, 'mds-separate');
    expect((await runCli([...runArgs(memmap, 'memmap'), '--streams', 'separate'])).code).toBe(0);
    expect((await runCli([...runArgs(mds, 'mds'), '--streams', 'separate'])).code).toBe(0);
    for (const stream of ['real', 'synthetic']) {
      const dataset = await readMemmap(join(memmap, stream));
      expect(dataset.sequences).toEqual(await mdsSequences(join(mds, stream)));
    }
    const mixture = JSON.parse(await readFile(join(memmap, 'mixture.json'), 'utf8'));
    expect(mixture.streams.synthetic.choose).toBeGreaterThan(0);
    expect(mixture.usage).toMatch(/memmap/);
  });
});

describe('megadocs merge of --rank memmap outputs', () => {
  it('lists every rank part in one memmap.json, and examples/pytorch_feed.py reads a merged MDS directory', async () => {
    const inputs = [join(SHARED_DATA, 'fineweb-300.jsonl'), join(SHARED_DATA, 'wikipedia-2349.jsonl')];
    for (const format of ['memmap', 'mds']) {
      const ranked = await tempDir();
      const common = ['--format', format, '--tokenizer', 'r50k_base', '--seq-len', '256', '--quiet'];
      for (const rank of ['0', '1']) {
        const args = ['pack', ...inputs, '--out', ranked, ...common, '--rank', rank, '--world-size', '2'];
        expect((await runCli(args)).code).toBe(0);
      }
      expect((await runCli(['merge', ranked])).code).toBe(0);
      if (format === 'memmap') {
        const merged = await readMemmap(ranked);
        const ranks = await Promise.all(
          ['rank-00000', 'rank-00001'].map((rank) => readMemmap(join(ranked, rank))),
        );
        expect(merged.sequences).toEqual(ranks.flatMap((rank) => rank.sequences));
        expect(merged.parts.map((part) => part.spans)).toEqual(
          ranks.flatMap((rank) => rank.parts.map((part) => part.spans)),
        );
        expect(merged.index.files.every((file) => /^rank-0000[01]\/part-\d{5}\.npy$/.test(file.path))).toBe(
          true,
        );
        expect((await runCli(['inspect', ranked, '--quiet'])).code).toBe(0);
      } else {
        // Without --seq-len the example reads options.seqLen from OUT/megadocs.json.
        const feed = spawnSync(
          'python3',
          [
            join(REPO_ROOT, 'examples/pytorch_feed.py'),
            ranked,
            '--command',
            `${process.execPath} ${CLI}`,
            '--dtype',
            'uint16',
          ],
          { encoding: 'utf8' },
        );
        expect(feed.stderr).not.toMatch(/FileNotFoundError/);
        expect(feed.status).toBe(0);
      }
    }
  });
});

describe('megadocs feed of a memmap', () => {
  it('streams the rows part after part, and shuffled as the same rows', async () => {
    const out = await tempDir();
    const args = [
      'pack',
      INPUT,
      '--out',
      out,
      '--format',
      'memmap',
      '--tokenizer',
      'r50k_base',
      '--seq-len',
      '128',
    ];
    expect((await runCli([...args, '--shard-size', '64KiB', '--quiet'])).code).toBe(0);
    const dataset = await readMemmap(out);
    const fed = await runCli(['feed', out, '--dtype', 'uint32']);
    expect(fed.code).toBe(0);
    const rows = (bytes: Buffer) =>
      Array.from({ length: bytes.length / 512 }, (_, row) =>
        bytes.subarray(row * 512, (row + 1) * 512).toString('hex'),
      );
    const expected = dataset.sequences.map((tokens) => Buffer.from(tokens.buffer).toString('hex'));
    expect(rows(fed.stdout)).toEqual(expected);
    const shuffled = await runCli(['feed', out, '--shuffle', '--seed', '1']);
    expect(rows(shuffled.stdout)).not.toEqual(expected);
    expect(rows(shuffled.stdout).sort()).toEqual([...expected].sort());
  });
});

describe('DocumentSpans', () => {
  it('gives the same spans per sequence after forgetting the documents behind, past its compaction', () => {
    const lengths = Array.from({ length: 10_000 }, (_, at) => 1 + ((at * 7919) % 37));
    const kept = new DocumentSpans();
    const forgetting = new DocumentSpans();
    lengths.forEach((length, at) => {
      kept.record(`doc-${at}`, length);
      forgetting.record(`doc-${at}`, length);
    });
    const seqLen = 16;
    const total = lengths.reduce((sum, length) => sum + length, 0);
    for (let position = 0; (position + 1) * seqLen <= total; position += 1) {
      forgetting.forgetBefore(position * seqLen);
      const expected = kept.within(position * seqLen, (position + 1) * seqLen);
      expect(forgetting.within(position * seqLen, (position + 1) * seqLen)).toEqual(expected);
      expect(expected.reduce((sum, span) => sum + span.end - span.start, 0)).toBe(seqLen);
    }
  });
});
