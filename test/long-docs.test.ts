// Real long documents (War and Peace in a few large documents, FineWeb) fitted to a small context: against the
// loopback server configured like vLLM with a small max_model_len, and with the embedded stories260K model.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BYTE_TOKENIZER,
  inputBudget,
  SEGMENT_JOINER,
  segmentAtLines,
  segmentCallName,
} from '../lib/generate/long-docs.js';
import { resolveRecipe } from '../lib/generate/recipes/index.js';
import { requestSeed } from '../lib/generate/seeds.js';
import { DEFAULT_TEMPLATES, fillSlots } from '../lib/generate/templates/index.js';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import { REPO_ROOT, runCli, SHARED_DATA, startCli, tempDir, waitCli } from './helpers/cli.js';
import { type GeneratedRecord, generatedRecords } from './helpers/generated-shards.js';
import { completionText, type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { datasetFiles, decodedParts, type SourceDoc } from './helpers/run-output.js';

const CONTEXT = 1500;
const MAX_TOKENS = 100;
const GENERATIONS = 2;
const MODEL = resolve(REPO_ROOT, '../shared/models/stories260K.gguf');

let server: OpenAiTestServer;
let dir: string;
let file: string;
let docs: SourceDoc[];

/** War and Peace cut at line breaks into `count` documents of about `chars` characters. */
async function novelDocs(count: number, chars: number): Promise<SourceDoc[]> {
  const lines = (await readFile(join(SHARED_DATA, 'war-and-peace.txt'), 'utf8')).split('\n');
  const found: SourceDoc[] = [];
  let current: string[] = [];
  let length = 0;
  for (const line of lines.slice(1000)) {
    current.push(line);
    length += line.length + 1;
    if (length < chars) continue;
    found.push({ id: `war-and-peace-${found.length}`, text: current.join('\n') });
    if (found.length === count) break;
    current = [];
    length = 0;
  }
  return found;
}

/** The first `count` FineWeb documents. */
async function finewebDocs(count: number): Promise<SourceDoc[]> {
  const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).split('\n').slice(0, count);
  return lines.map((line) => {
    const record = JSON.parse(line) as { id: string; text: string };
    return { id: String(record.id), text: record.text };
  });
}

async function writeInput(name: string, list: SourceDoc[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${list.map((doc) => JSON.stringify(doc)).join('\n')}\n`);
  return path;
}

beforeAll(async () => {
  server = await startOpenAiServer({
    models: [{ id: 'small-context', maxModelLen: CONTEXT }],
    maxModelLen: CONTEXT,
  });
  dir = await tempDir('megadocs-long-docs-');
  docs = [...(await novelDocs(3, 30_000)), ...(await finewebDocs(5))];
  file = await writeInput('input.jsonl', docs);
});
afterAll(() => server.close());

const generate = (out: string, ...extra: string[]) => [
  'generate',
  file,
  '--out',
  out,
  '--llm',
  server.url,
  '--generations',
  String(GENERATIONS),
  '--max-tokens',
  String(MAX_TOKENS),
  '-q',
  ...extra,
];

/** Each document's segments as the run cuts them: the budget counted one token per byte (the server default). */
async function expectedSegments(): Promise<Map<string, string[]>> {
  const recipe = await resolveRecipe({
    recipe: 'rephrase',
    generations: GENERATIONS,
    nPerRequest: 16,
    sampling: { maxTokens: MAX_TOKENS },
  });
  const budget = inputBudget(recipe, CONTEXT, 'chat', BYTE_TOKENIZER);
  return new Map(docs.map((doc) => [doc.id, segmentAtLines(doc.text, budget, BYTE_TOKENIZER).segments]));
}

/** Generation `index` of a document: the server's answer (style wiki) for each of its segments, joined. */
function expectedGeneration(doc: SourceDoc, segments: string[], index: number): string {
  const wiki = DEFAULT_TEMPLATES['rephrase.wiki']!.messages.filter((message) => message.role === 'user');
  const answers = segments.map((segment, position) => {
    const seed = requestSeed(0, doc.id, 'rephrase', segmentCallName('wiki:0', position));
    const prompt = fillSlots(wiki.at(-1)!.content, { text: segment });
    return completionText(prompt, seed, index, MAX_TOKENS).text;
  });
  return answers.join(SEGMENT_JOINER);
}

describe('--long-docs segment against a server with a small max_model_len', () => {
  let records: GeneratedRecord[];
  let segments: Map<string, string[]>;
  let out: string;

  beforeAll(async () => {
    out = join(dir, 'segment');
    server.reset();
    const result = await runCli(generate(out));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    records = await generatedRecords(out);
    segments = await expectedSegments();
  });

  it('sends no request over the context, and every document keeps its G generations', () => {
    expect(server.stats.overContext).toBe(0);
    expect(server.log.filter((entry) => entry.status !== 200)).toEqual([]);
    for (const doc of docs) {
      expect(records.filter((record) => record.doc_id === doc.id).length).toBe(GENERATIONS);
    }
    const long = docs.filter((doc) => segments.get(doc.id)!.length > 1);
    // All of the novel's documents and some of FineWeb's are over the budget.
    expect(long.length).toBeGreaterThan(3);
    expect(long.length).toBeLessThan(docs.length);
  });

  it('joins generation g of each segment, in order: exactly what the server answered for each', () => {
    for (const doc of docs) {
      for (const record of records.filter((entry) => entry.doc_id === doc.id)) {
        expect(record.text).toBe(expectedGeneration(doc, segments.get(doc.id)!, record.index as number));
      }
    }
  });

  it('counts them in the summary and megadocs.json, with the served model and its context', async () => {
    const long = [...segments.values()].filter((pieces) => pieces.length > 1);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.stats).toMatchObject({
      model: 'small-context',
      contextSize: CONTEXT,
      longDocs: {
        segmented: long.length,
        segments: long.reduce((sum, pieces) => sum + pieces.length, 0),
        linesCut: 0,
        truncated: 0,
        skipped: 0,
        retriedSmaller: 0,
      },
      failures: {},
    });
    const shown = await runCli(generate(join(dir, 'segment-shown')).filter((arg) => arg !== '-q'));
    expect(shown.stderr).toMatch(
      new RegExp(`long documents +${long.length} segmented \\(${manifest.stats.longDocs.segments} segments`),
    );
  });

  it('writes the same bytes at --concurrency 1, and after kill -9 a rerun sends only what is not journaled', async () => {
    const serial = join(dir, 'serial');
    expect((await runCli(generate(serial, '--concurrency', '1'))).code).toBe(0);
    expect(await datasetFiles(serial)).toEqual(await datasetFiles(out));

    const killed = join(dir, 'killed');
    server.reset();
    const child = startCli(generate(killed, '--concurrency', '4'));
    const exited = waitCli(child);
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (server.stats.completed < 40) return;
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve();
      }, 2);
    });
    expect((await exited).signal).toBe('SIGKILL');
    server.reset();
    const rerun = await runCli(generate(killed));
    expect(rerun.code).toBe(0);
    expect(await datasetFiles(killed)).toEqual(await datasetFiles(out));
    const stats = JSON.parse(await readFile(join(killed, 'megadocs.json'), 'utf8')).stats;
    expect(stats.requests.replayed).toBeGreaterThan(0);
    const full = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')).stats;
    expect(stats.requests.replayed + server.stats.completed).toBe(full.requests.completed);
  });
});

describe('megadocs run on long documents', () => {
  it("stitches each long document's megadoc from its G whole generations and the original", async () => {
    server.reset();
    const out = join(dir, 'run');
    const result = await runCli([
      'run',
      file,
      '--out',
      out,
      '--llm',
      server.url,
      '--generations',
      String(GENERATIONS),
      '--max-tokens',
      String(MAX_TOKENS),
      '--real-epochs',
      '0',
      '--no-shuffle',
      '--tail',
      'keep',
      '--seq-len',
      '512',
      '--workers',
      '1',
      '-q',
    ]);
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(server.stats.overContext).toBe(0);
    const stats = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')).stats;
    expect(stats.assemble.documentsKept).toBe(docs.length);
    const segments = await expectedSegments();
    const long = docs.filter((doc) => segments.get(doc.id)!.length > 1);
    expect(stats.generate.longDocs.segmented).toBe(long.length);
    // The synthetic stream in order: each megadoc is its generations, then the original, cut at EOS.
    const parts = await decodedParts(out, await loadEncoder('o200k_base'));
    expect(parts).toEqual(
      docs.flatMap((doc) => [
        ...Array.from({ length: GENERATIONS }, (_, index) =>
          expectedGeneration(doc, segments.get(doc.id)!, index),
        ),
        doc.text,
      ]),
    );
  });
});

describe('MAGA and stretch on long documents', () => {
  it('fit every request to the context: MAGA rewrites every segment per pair, stretch windows its splits', async () => {
    // MAGA's stage 1 asks for 1024 tokens: a context of 1500 leaves it no room for input (refused up front).
    const refused = await runCli(generate(join(dir, 'maga-refused'), '--recipe', 'maga'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/a context of 1500 tokens leaves 0 tokens of input to recipe maga/);
    const larger = await startOpenAiServer({ models: [{ id: 'm', maxModelLen: 3000 }], maxModelLen: 3000 });
    for (const recipe of ['maga', 'stretch']) {
      const out = join(dir, recipe);
      const args = generate(out, '--recipe', recipe).map((arg) => (arg === server.url ? larger.url : arg));
      const result = await runCli(args);
      expect([recipe, result.code, result.stderr]).toEqual([recipe, 0, '']);
      expect(larger.stats.overContext).toBe(0);
      const stats = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')).stats;
      expect(stats.failures).toEqual({});
      const records = await generatedRecords(out);
      const novel = records.filter((record) => record.doc_id.startsWith('war-and-peace'));
      expect(novel.length).toBe(3 * GENERATIONS);
      if (recipe === 'maga') {
        // Each rewrite of the novel joins one answer per segment of it.
        for (const record of novel) {
          expect(record.text.split(SEGMENT_JOINER).length).toBeGreaterThan(1);
        }
      }
    }
    await larger.close();
  });
});

describe('--long-docs truncate, skip, and a context_length answer', () => {
  it('truncate keeps the first segment; skip drops the document; both are counted', async () => {
    const segments = await expectedSegments();
    const long = docs.filter((doc) => segments.get(doc.id)!.length > 1);
    const truncated = join(dir, 'truncate');
    expect((await runCli(generate(truncated, '--long-docs', 'truncate'))).code).toBe(0);
    const cut = await generatedRecords(truncated);
    for (const doc of long) {
      for (const record of cut.filter((entry) => entry.doc_id === doc.id)) {
        expect(record.text.split('\n\n').length).toBe(1);
      }
    }
    const truncatedStats = JSON.parse(await readFile(join(truncated, 'megadocs.json'), 'utf8')).stats;
    expect(truncatedStats.longDocs).toMatchObject({ segmented: 0, truncated: long.length });

    const skipped = join(dir, 'skip');
    expect((await runCli(generate(skipped, '--long-docs', 'skip'))).code).toBe(0);
    const kept = new Set((await generatedRecords(skipped)).map((record) => record.doc_id));
    expect(long.some((doc) => kept.has(doc.id))).toBe(false);
    expect(kept.size).toBe(docs.length - long.length);
    const skippedStats = JSON.parse(await readFile(join(skipped, 'megadocs.json'), 'utf8')).stats;
    expect(skippedStats.longDocs).toMatchObject({ skipped: long.length });
    expect(skippedStats.skipped).toEqual({ too_long: long.length });
  });

  it('sends a document refused for its context length once more with half the budget', async () => {
    // --context-size above what the server holds: its first requests of long documents are refused.
    const small = await startOpenAiServer({ maxModelLen: 450 });
    try {
      const out = join(dir, 'retried');
      const result = await runCli([
        ...generate(out, '--model', 'm', '--context-size', '3000').map((arg) =>
          arg === server.url ? small.url : arg,
        ),
      ]);
      expect(result.code).toBe(0);
      const stats = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')).stats;
      expect(small.stats.overContext).toBeGreaterThan(0);
      expect(stats.longDocs.retriedSmaller).toBeGreaterThan(0);
      expect(stats.retries.context_length).toBe(small.stats.overContext);
      expect(stats.failures).toEqual({});
    } finally {
      await small.close();
    }
  });
});

describe('--long-docs segment with the embedded stories260K model (context 2048)', () => {
  it('generates every one of the first 5 FineWeb documents (2 of them over the context before)', async () => {
    const out = join(dir, 'local');
    const input = await writeInput('fineweb-5.jsonl', await finewebDocs(5));
    const result = await runCli([
      'generate',
      input,
      '--out',
      out,
      '--llm',
      `local:${MODEL}`,
      '--generations',
      '2',
      '--max-tokens',
      '16',
      '-q',
    ]);
    expect(result.code).toBe(0);
    const stats = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')).stats;
    expect(stats).toMatchObject({ model: 'stories260K.gguf', contextSize: 2048, failures: {} });
    expect(stats.longDocs.segmented).toBe(2);
    expect(stats.longDocs.segments).toBeGreaterThanOrEqual(4);
    const records = await generatedRecords(out);
    expect(records.length).toBe(10);
  }, 120_000);
});
