// The embedded LLM as a user runs it (the built CLI with `--llm local:...` on ../shared/models/stories260K.gguf):
// generations and megadocs made of the model's own samples for the recipe's prompts; clear errors for bad models.
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { getLlama, LlamaChat, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONTEXT_SIZE, sampleSeed } from '../lib/backends/local-backend.js';
import { postprocess } from '../lib/generate/postprocess.js';
import { resolveRecipe } from '../lib/generate/recipes/index.js';
import { requestSeed } from '../lib/generate/seeds.js';
import { DEFAULT_TEMPLATES, renderPrompt } from '../lib/generate/templates/index.js';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import { CLI, REPO_ROOT, runCli, tempDir } from './helpers/cli.js';
import { startHubServer } from './helpers/hub-server.js';
import { decodedParts } from './helpers/run-output.js';

const MODEL = path.resolve(REPO_ROOT, '../shared/models/stories260K.gguf');
const FIXTURE = path.join(REPO_ROOT, 'fixtures/web-sample.jsonl');
const DOCS = 3;
const GENERATIONS = 2;
const MAX_TOKENS = 40;
const TEMPERATURE = 0.8;

let dir: string;
let input: string;
let docs: Array<{ id: string; text: string }>;

beforeAll(async () => {
  dir = await tempDir('megadocs-local-cli-');
  const lines = readFileSync(FIXTURE, 'utf8').trim().split('\n').slice(0, DOCS);
  docs = lines.map((line) => JSON.parse(line) as { id: string; text: string });
  input = path.join(dir, 'input.jsonl');
  await fs.writeFile(input, `${lines.join('\n')}\n`);
});

/** `megadocs generate` with the local model into a fresh OUT (uncompressed shards); its records. */
async function generate(name: string, ...extra: string[]) {
  const out = path.join(dir, name);
  const result = await runCli([
    'generate',
    input,
    '--out',
    out,
    '--llm',
    `local:${MODEL}`,
    '--generations',
    String(GENERATIONS),
    '--max-tokens',
    String(MAX_TOKENS),
    '--compression',
    'none',
    '--quiet',
    '--json',
    ...extra,
  ]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const shard = await fs.readFile(path.join(out, 'shard.00000.jsonl'), 'utf8');
  const records = shard
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { summary: JSON.parse(result.stdout.toString()) as Record<string, unknown>, records };
}

/** What node-llama-cpp itself writes for a document's rephrase request, sample by sample, cleaned as the recipe does. */
async function expectedRephrases(): Promise<string[][]> {
  const recipe = await resolveRecipe({ recipe: 'rephrase', generations: GENERATIONS, nPerRequest: 16 });
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: MODEL });
  const context = await model.createContext({
    contextSize: Math.min(model.trainContextSize, DEFAULT_CONTEXT_SIZE),
    sequences: 1,
    threads: 1,
  });
  const chat = new LlamaChat({
    contextSequence: context.getSequence(),
    chatWrapper: resolveChatWrapper(model),
  });
  const expected: string[][] = [];
  for (const doc of docs) {
    const { messages } = renderPrompt(DEFAULT_TEMPLATES['rephrase.wiki']!, { text: doc.text }, 'chat') as {
      messages: Array<{ role: 'system' | 'user'; content: string }>;
    };
    const history = [
      ...messages.map((message) => ({ type: message.role, text: message.content })),
      { type: 'model' as const, response: [] },
    ];
    const seed = requestSeed(0, doc.id, 'rephrase', 'wiki:0');
    const texts: string[] = [];
    for (let index = 0; index < GENERATIONS; index += 1) {
      const { response } = await chat.generateResponse(history, {
        seed: sampleSeed(seed, index),
        maxTokens: MAX_TOKENS,
        temperature: TEMPERATURE,
        repeatPenalty: false,
      });
      texts.push(postprocess(response, recipe.postprocess, undefined, []).text!);
      await chat.sequence.clearHistory();
    }
    expected.push(texts);
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return expected;
}

let rephrasesOnce: Promise<string[][]> | undefined;
/** Computed once, when a test first needs it. */
function rephrases(): Promise<string[][]> {
  rephrasesOnce ??= expectedRephrases();
  return rephrasesOnce;
}

describe('megadocs generate --llm local:', () => {
  it("writes, per document, the model's own samples for the recipe's prompt, named after the model file", async () => {
    const { summary, records } = await generate(
      'chat',
      '--concurrency',
      '1',
      '--temperature',
      String(TEMPERATURE),
    );
    expect(summary).toMatchObject({ documents: DOCS, generations: DOCS * GENERATIONS, shards: 1 });
    const expected = await rephrases();
    expect(records.map((record) => [record.doc_id, record.index])).toEqual(
      docs.flatMap((doc) => [0, 1].map((index) => [doc.id, index])),
    );
    expect(records.map((record) => record.text)).toEqual(expected.flat());
    for (const record of records) {
      expect(record).toMatchObject({
        model: 'stories260K.gguf',
        recipe: 'rephrase',
        finish_reason: 'length',
      });
      expect((record.text as string).length).toBeGreaterThan(20);
    }
  });

  it('runs plain-text prompts (--api completions) on parallel sequences', async () => {
    const args = ['--concurrency', '3', '--api', 'completions', '--threads', '1'];
    const first = await generate('text', ...args);
    const texts = first.records.map((record) => record.text as string);
    expect(texts).toHaveLength(DOCS * GENERATIONS);
    expect(new Set(texts).size).toBe(texts.length);
    expect(texts.every((text) => text.trim().length > 0)).toBe(true);
    expect(first.summary).toMatchObject({ requests: { completed: DOCS, failed: 0 } });
  });
});

describe('megadocs generate --llm local:hf:', () => {
  it('downloads the model from HF_ENDPOINT into HF_HUB_CACHE once, then runs from the cache', async () => {
    const hub = await startHubServer({
      repos: [
        {
          id: 'tiny/stories-GGUF',
          type: 'model',
          revisions: { main: { 'stories260K.gguf': { disk: MODEL } } },
        },
      ],
    });
    const cache = path.join(dir, 'hf-cache');
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache };
    const spec = 'local:hf:tiny/stories-GGUF/stories260K.gguf';
    const args = (out: string) => [
      'generate',
      input,
      '--out',
      path.join(dir, out),
      '--llm',
      spec,
      '--generations',
      '1',
    ];
    try {
      const first = await runCli([...args('hub-1'), '--max-tokens', '8', '--quiet', '--json'], env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const snapshots = path.join(cache, 'models--tiny--stories-GGUF', 'snapshots');
      const [commit] = await fs.readdir(snapshots);
      const cached = await fs.readFile(path.join(snapshots, commit!, 'stories260K.gguf'));
      expect(Buffer.compare(cached, readFileSync(MODEL))).toBe(0);
      const requests = hub.stats.requests.length;
      const second = await runCli([...args('hub-2'), '--max-tokens', '8', '--quiet'], env);
      expect(second.code).toBe(0);
      expect(hub.stats.requests.length).toBe(requests);
      const shard = await fs.readFile(path.join(dir, 'hub-2', 'shard.00000.jsonl.zst'));
      expect(shard.length).toBeGreaterThan(0);
    } finally {
      await hub.close();
    }
  });
});

describe('megadocs run --llm local:', () => {
  it("writes megadocs whose parts are the model's own rephrases of each document, then the document", async () => {
    const out = path.join(dir, 'run');
    const result = await runCli([
      'run',
      input,
      '--out',
      out,
      '--llm',
      `local:${MODEL}`,
      '--concurrency',
      '1',
      '--generations',
      String(GENERATIONS),
      '--max-tokens',
      String(MAX_TOKENS),
      '--temperature',
      String(TEMPERATURE),
      '--workers',
      '1',
      '--seq-len',
      '256',
      '--tail',
      'keep',
      '--no-shuffle',
      '--real-epochs',
      '0',
      '--quiet',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const expected = await rephrases();
    const parts = await decodedParts(out, await loadEncoder('o200k_base'));
    expect(parts).toEqual(docs.flatMap((doc, position) => [...expected[position]!, doc.text]));
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'megadocs.json'), 'utf8'));
    expect(manifest).toMatchObject({ status: 'complete', options: { model: 'stories260K.gguf' } });
  });
});

describe('megadocs generate --llm local: errors', () => {
  it('names a missing model file, and leaves a failed run directory a rerun can continue', async () => {
    const missing = path.join(dir, 'missing.gguf');
    const out = path.join(dir, 'out-missing');
    const args = [
      'generate',
      input,
      '--out',
      out,
      '--llm',
      `local:${missing}`,
      '--max-tokens',
      '8',
      '--quiet',
    ];
    const result = await runCli(args);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`${missing}: the model file cannot be read (ENOENT)`);
    expect(result.stderr).toContain('local:hf:ORG/REPO/FILE.gguf');
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.status).toBe('failed');
    await fs.copyFile(MODEL, missing);
    const rerun = await runCli(args);
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
  });

  it('names a truncated model file', async () => {
    const truncated = path.join(dir, 'truncated.gguf');
    await fs.writeFile(truncated, readFileSync(MODEL).subarray(0, 800_000));
    const out = path.join(dir, 'out-truncated');
    const result = await runCli(['generate', input, '--out', out, '--llm', `local:${truncated}`, '--quiet']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`${truncated}: the file is truncated: it has 800000 bytes`);
  });

  it('says how to install node-llama-cpp when it is not installed', async () => {
    const hide = path.join(dir, 'hide-node-llama-cpp.mjs');
    await fs.writeFile(
      hide,
      `export async function resolve(specifier, context, next) {
  if (specifier !== 'node-llama-cpp') return next(specifier, context);
  const error = new Error("Cannot find package 'node-llama-cpp' imported from " + context.parentURL);
  error.code = 'ERR_MODULE_NOT_FOUND';
  throw error;
}\n`,
    );
    const register = path.join(dir, 'register.mjs');
    await fs.writeFile(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hide}`)});\n`,
    );
    const out = path.join(dir, 'out-uninstalled');
    const child = spawnSync(
      process.execPath,
      ['--import', register, CLI, 'generate', input, '--out', out, '--llm', `local:${MODEL}`, '--quiet'],
      { encoding: 'utf8' },
    );
    expect(child.status).not.toBe(0);
    expect(child.stderr).toContain(
      `--llm local:${MODEL}: the embedded LLM needs node-llama-cpp, which is not installed`,
    );
    expect(child.stderr).toContain('npm install node-llama-cpp');
  });
});
