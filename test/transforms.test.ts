// Users' transforms at the four insertion points: from the library (runMegadocs) and from the CLI
// (--transform FILE.mjs), their effect decoded from the shards, resume after kill -9, and a changed module refused.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Highland from 'highland';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copiedShare, generations as dropCopies } from '../examples/transforms/drop-copies.mjs';
import { parseRunConfig } from '../lib/config.js';
import { runMegadocs } from '../lib/pipeline/run.js';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';
import type { Doc, DocGenerations, Megadoc, Sequence } from '../lib/types.js';
import { REPO_ROOT, runCli, startCli, tempDir, waitCli } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { datasetFiles, decodedParts, realInput, type SourceDoc, samplesOf } from './helpers/run-output.js';

let server: OpenAiTestServer;
let dir: string;
let file: string;
let docs: SourceDoc[];
let encoder: Encoder;

/** Transforms at the four points, as a module file would export them (the CLI test writes the same text). */
const MODULE_TEXT = `
export const documents = [{ name: 'drop-odd', version: '1', stage: (s) => s.filter((d) => !/[13579]$/.test(d.id)) }];
export const generations = [
  {
    name: 'tag',
    version: '1',
    create: (config) => (s) =>
      s.map((d) => ({ ...d, generations: d.generations.map((g) => ({ ...g, text: 'GEN' + config.seqLen + ' ' + g.text })) })),
  },
];
export const megadocs = [(s) => s.map((m) => (m.stream === 'synthetic' ? { ...m, parts: [...m.parts, 'MEGADOC END'] } : m))];
export const sequences = [
  { name: 'twice', version: '1', stage: (s) => s.map((q) => [q, q]).sequence() },
];
`;

beforeAll(async () => {
  server = await startOpenAiServer({ latency: { uniform: [2, 20] } });
  dir = await tempDir('megadocs-transforms-');
  ({ file, docs } = await realInput(dir, 12));
  encoder = await loadEncoder('o200k_base');
});
afterAll(() => server.close());

function cliArgs(out: string, module: string): string[] {
  return [
    'run',
    file,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--generations',
    '2',
    '--n-per-request',
    '1',
    '--concurrency',
    '2',
    '--workers',
    '1',
    '--seq-len',
    '128',
    '--tail',
    'keep',
    '--streams',
    'separate',
    '--no-shuffle',
    '--quiet',
    '--transform',
    module,
  ];
}

const even = () => docs.filter((doc) => !/[13579]$/.test(doc.id));
const odd = () => docs.filter((doc) => /[13579]$/.test(doc.id));

describe('transforms from the library', () => {
  it('applies documents, generations and megadocs transforms, seen in the decoded shards', async () => {
    const out = join(dir, 'library');
    const config = parseRunConfig(
      {
        inputs: [file],
        out,
        llm: [server.url],
        model: 'test-model',
        generations: 2,
        seqLen: 128,
        tail: 'keep',
        streams: 'separate',
        shuffle: false,
        workers: 1,
      },
      'test',
    );
    const summary = await runMegadocs(config, {
      transforms: {
        documents: (s: Highland.Stream<Doc>) => s.filter((d) => !/[13579]$/.test(d.id)),
        generations: {
          name: 'tag',
          version: '1',
          create: (c) => (s: Highland.Stream<DocGenerations>) =>
            s.map((d) => ({
              ...d,
              generations: d.generations.map((g) => ({ ...g, text: `GEN${c.seqLen} ${g.text}` })),
            })),
        },
        megadocs: [
          {
            name: 'end',
            version: '2',
            stage: (s: Highland.Stream<Megadoc>) =>
              s.map((m) => (m.stream === 'synthetic' ? { ...m, parts: [...m.parts, 'MEGADOC END'] } : m)),
          },
        ],
      },
    });
    expect(summary.source.documents).toBe(12);
    expect(summary.assemble.documentsIn).toBe(even().length);
    const parts = [
      ...(await decodedParts(join(out, 'real'), encoder)),
      ...(await decodedParts(join(out, 'synthetic'), encoder)),
    ];
    expect(parts.filter((part) => part === 'MEGADOC END')).toHaveLength(even().length);
    expect(parts.filter((part) => part.startsWith('GEN128 s'))).toHaveLength(2 * even().length);
    for (const doc of even()) expect(parts).toContain(doc.text);
    for (const doc of odd()) expect(parts).not.toContain(doc.text);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.options.transforms.megadocs).toEqual([{ name: 'end', version: '2' }]);
    expect(manifest.options.transforms.documents[0].source).toMatch(/^[0-9a-f]{64}$/);
  });

  it('runs one sequences stage value on both streams, its state per stream', async () => {
    const out = join(dir, 'library-sequences');
    const config = parseRunConfig(
      {
        inputs: [file],
        out,
        llm: [server.url],
        model: 'test-model',
        generations: 2,
        seqLen: 128,
        streams: 'separate',
        workers: 1,
      },
      'test',
    );
    // Numbers each stream's sequences from 1 at its start: state made when the stream starts, not when built.
    const numbered = {
      name: 'number',
      version: '1',
      stage: (s: Highland.Stream<Sequence>) => {
        let count = 0;
        return s.map((q) => {
          const tokens = q.tokens.slice();
          count += 1;
          tokens[0] = count;
          return { ...q, tokens };
        });
      },
    };
    await runMegadocs(config, { transforms: { sequences: [numbered] } });
    for (const stream of ['real', 'synthetic']) {
      const firsts = (await samplesOf(join(out, stream))).map((sample) => sample[0]!).sort((a, b) => a - b);
      expect(firsts).toEqual(firsts.map((_v, i) => i + 1));
    }
  });

  it('refuses a transform at a point the command does not have, before any work', async () => {
    const out = join(dir, 'no-point');
    const { runPack } = await import('../lib/pipeline/pack.js');
    await expect(
      runPack(
        {
          inputs: [file],
          out,
          overwrite: false,
          record: { textField: 'text', idField: 'id', onError: 'fail' },
          tokenizer: 'o200k_base',
          workers: 0,
          eos: true,
          bos: false,
          seqLen: 128,
          tail: 'drop',
          format: 'mds',
          boundaries: false,
          compression: 'zstd:3',
          shardSize: 1 << 26,
          hashes: ['sha1'],
        },
        { transforms: { generations: [(s: Highland.Stream<DocGenerations>) => s] } as never },
      ),
    ).rejects.toThrow(/`megadocs pack` has no "generations" insertion point/);
  });

  it('the example drop-copies transform drops a copied generation and keeps a rephrase', async () => {
    const _ = (await import('highland')).default;
    const source = docs[0]!.text;
    const copy = source.split(/\s+/).slice(0, 60).join(' ');
    const rephrase =
      'A short account in other words of what the article reports about the storms and the coverage.';
    expect(copiedShare(copy, new Set())).toBe(0);
    const stage = dropCopies[0]!.create();
    const done: DocGenerations = {
      doc: { id: 'd', text: source },
      generations: [copy, rephrase].map((text, index) => ({
        docId: 'd',
        recipe: 'rephrase',
        index,
        text,
        finishReason: 'stop',
        model: 'm',
        seed: 0,
      })),
      failed: 0,
      filtered: 0,
    };
    const [out] = (await stage(_([done]))
      .collect()
      .toPromise(Promise)) as DocGenerations[];
    expect(out!.generations.map((g) => g.text)).toEqual([rephrase]);
    expect(out!.filtered).toBe(1);
  });
});

describe('transforms from the CLI (--transform FILE.mjs)', () => {
  let module: string;
  let reference: Record<string, string>;

  beforeAll(async () => {
    module = join(dir, 'marks.mjs');
    await writeFile(module, MODULE_TEXT);
  });

  it('applies the module at all four points and records its hash in megadocs.json', async () => {
    const out = join(dir, 'cli');
    const result = await runCli(cliArgs(out, module));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // Each stream's sequences come twice (sequences), and once deduplicated they hold what the other three made.
    let text = '';
    for (const stream of ['real', 'synthetic']) {
      const samples = await samplesOf(join(out, stream));
      expect(samples.length % 2).toBe(0);
      for (let i = 0; i < samples.length; i += 2) {
        expect(Buffer.compare(Buffer.from(samples[i]!.buffer), Buffer.from(samples[i + 1]!.buffer))).toBe(0);
        text += encoder.decode(Array.from(samples[i]!));
      }
    }
    expect(text.split('MEGADOC END')).toHaveLength(even().length + 1);
    expect(text.split('GEN128 s')).toHaveLength(2 * even().length + 1);
    for (const doc of odd()) expect(text).not.toContain(doc.text);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.options.transforms.sequences[0]).toMatchObject({ name: 'twice', module: 'marks.mjs' });
    expect(manifest.options.transforms.sequences[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    reference = await datasetFiles(out);
  });

  it('after kill -9, a rerun with the transform gives byte-identical shards', async () => {
    const out = join(dir, 'cli-killed');
    server.reset();
    const child = startCli(cliArgs(out, module));
    const exited = waitCli(child);
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (server.stats.completed >= 5) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }, 2);
      exited.then(() => reject(new Error('the run ended before it could be killed')), reject);
    });
    expect((await exited).signal).toBe('SIGKILL');
    const rerun = await runCli(cliArgs(out, module));
    expect(rerun.code).toBe(0);
    expect(await datasetFiles(out)).toEqual(reference);
  });

  it('refuses to continue with a changed transform module, naming the transform', async () => {
    const out = join(dir, 'cli-changed');
    server.reset();
    const child = startCli(cliArgs(out, module));
    const exited = waitCli(child);
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (server.stats.completed >= 3) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }, 2);
    });
    await exited;
    const changed = join(dir, 'marks-changed', 'marks.mjs');
    await (await import('node:fs/promises')).mkdir(join(dir, 'marks-changed'), { recursive: true });
    await writeFile(changed, MODULE_TEXT.replace("'GEN'", "'GENERATED'"));
    const refused = await runCli(cliArgs(out, changed));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('with different options');
    expect(refused.stderr).toMatch(/transform generations\[0\] "tag" version 1 \(marks\.mjs\) changed/);
  });

  it('explains a module that exports no insertion point', async () => {
    const bad = join(dir, 'empty.mjs');
    await writeFile(bad, 'export const generation = [];\n');
    const result = await runCli(cliArgs(join(dir, 'cli-bad'), bad));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the module exports no insertion point (it exports generation)');
  });

  it('runs the example transform from the repository', async () => {
    const out = join(dir, 'cli-example');
    const result = await runCli(cliArgs(out, join(REPO_ROOT, 'examples/transforms/drop-copies.mjs')));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.options.transforms.generations[0]).toMatchObject({ name: 'drop-copies', version: '1' });
  });

  it('pack and generate take --transform at their own points', async () => {
    const module = join(dir, 'pack-gen.mjs');
    await writeFile(
      module,
      `export const documents = [(s) => s.filter((d) => !/[13579]$/.test(d.id))];
export const generations = [{ name: 'tag', version: '1', stage: (s) => s.map((d) => ({ ...d, generations: d.generations.map((g) => ({ ...g, text: 'TAGGED ' + g.text })) })) }];
`,
    );
    const packOut = join(dir, 'pack-transform');
    const packed = await runCli([
      'pack',
      file,
      '--out',
      packOut,
      '--seq-len',
      '64',
      '--tail',
      'keep',
      '--quiet',
      '--transform',
      join(dir, 'marks.mjs').replace('marks', 'docs-only'),
    ]);
    expect(packed.stderr).toContain('cannot read the transform module');
    await writeFile(
      join(dir, 'docs-only.mjs'),
      'export const documents = [(s) => s.filter((d) => !/[13579]$/.test(d.id))];\n',
    );
    const ok = await runCli([
      'pack',
      file,
      '--out',
      packOut,
      '--seq-len',
      '64',
      '--tail',
      'keep',
      '--quiet',
      '--transform',
      join(dir, 'docs-only.mjs'),
    ]);
    expect(ok.code).toBe(0);
    const parts = await decodedParts(packOut, encoder);
    expect(parts).toEqual(even().map((doc) => doc.text));
    // pack has no generations point: the module is refused before any work.
    const refused = await runCli([
      'pack',
      file,
      '--out',
      join(dir, 'pack-refused'),
      '--quiet',
      '--transform',
      module,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('`megadocs pack` has no "generations" insertion point');
    const genOut = join(dir, 'generate-transform');
    const generated = await runCli([
      'generate',
      file,
      '--out',
      genOut,
      '--llm',
      server.url,
      '--model',
      'test-model',
      '--generations',
      '2',
      '--quiet',
      '--transform',
      module,
    ]);
    expect(generated.code).toBe(0);
    const { zstdDecompress } = await import('../lib/codecs/zstd.js');
    const records = Buffer.from(await zstdDecompress(await readFile(join(genOut, 'shard.00000.jsonl.zst'))))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { doc_id: string; text: string });
    expect(records).toHaveLength(2 * even().length);
    expect(records.every((record) => record.text.startsWith('TAGGED s'))).toBe(true);
    expect(new Set(records.map((record) => record.doc_id))).toEqual(new Set(even().map((doc) => doc.id)));
  });
});
