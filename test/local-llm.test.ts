// The embedded LLM (`--llm local:...`) on the real stories260K model: the same samples as node-llama-cpp used
// directly with the same seeds, token usage, JSON grammar, context limits, clear errors for missing and truncated
// models, and `local:hf:` downloads from a loopback Hub into the Hugging Face cache layout.
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  getLlama,
  type Llama,
  LlamaChat,
  LlamaCompletion,
  type LlamaGrammar,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
} from 'node-llama-cpp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChatMessage, RequestFailedError } from '../lib/backends/backend.js';
import { createLocalBackend, type LocalBackend, sampleSeed } from '../lib/backends/local-backend.js';
import {
  hubCacheDir,
  localModelName,
  parseLocalSpec,
  resolveLocalModel,
} from '../lib/backends/local-model.js';
import { TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';
import { failure } from './helpers/sources.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const MODEL = path.resolve(REPO_ROOT, '../shared/models/stories260K.gguf');
const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You rewrite documents and keep every fact.' },
  {
    role: 'user',
    content: 'Rewrite this as a story for a child:\n\nTom had a red ball. He lost it in the park.',
  },
];
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let llama: Llama;
let model: LlamaModel;
let scratch: string;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath: MODEL });
  scratch = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-local-'));
});
afterAll(async () => {
  await model.dispose();
  await llama.dispose();
  await fs.rm(scratch, { recursive: true, force: true });
});

/** One sample straight through node-llama-cpp on a fresh one-sequence context: its text and token counts. */
async function rawSample(
  kind: 'chat' | 'text',
  seed: number,
  maxTokens: number,
  contextSize: number,
  grammar?: LlamaGrammar,
) {
  const context = await model.createContext({ contextSize, sequences: 1, threads: 1 });
  const sequence = context.getSequence();
  const options = { seed, maxTokens, temperature: 1, repeatPenalty: false as const, grammar };
  const text =
    kind === 'chat'
      ? (
          await new LlamaChat({
            contextSequence: sequence,
            chatWrapper: resolveChatWrapper(model),
          }).generateResponse(
            [
              { type: 'system', text: MESSAGES[0]!.content },
              { type: 'user', text: MESSAGES[1]!.content },
              { type: 'model', response: [] },
            ],
            options,
          )
        ).response
      : await new LlamaCompletion({ contextSequence: sequence }).generateCompletion('Once upon a time, Tom', {
          ...options,
          disableContextShift: true,
        });
  const meter = sequence.tokenMeter.getState();
  await context.dispose();
  return { text, promptTokens: meter.usedInputTokens, completionTokens: meter.usedOutputTokens };
}

function localBackend(
  format: 'chat' | 'text',
  concurrency: number,
  contextSize?: number,
): Promise<LocalBackend> {
  return createLocalBackend({
    spec: `local:${MODEL}`,
    concurrency,
    format,
    cores: 2,
    gpu: false,
    contextSize,
  });
}

describe('local: model specs', () => {
  it('parses files and Hub files, names them, and refuses other shapes with the accepted ones', async () => {
    expect(parseLocalSpec('local:models/a.gguf')).toEqual({ kind: 'file', path: 'models/a.gguf' });
    expect(parseLocalSpec('local:hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@v1/q4/x.gguf')).toEqual({
      kind: 'hub',
      repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF',
      revision: 'v1',
      file: 'q4/x.gguf',
    });
    expect(localModelName(`local:${MODEL}`)).toBe('stories260K.gguf');
    expect(localModelName('local:hf:org/repo/f.gguf')).toBe('org/repo/f.gguf');
    for (const bad of [
      'local:',
      'local:hf:org/f.gguf',
      'local:hf:org/repo/model.bin',
      'local:hf:org/repo/../x.gguf',
    ]) {
      const error = await failure(Promise.resolve().then(() => parseLocalSpec(bad)));
      expect(error.message).toContain(`--llm ${bad}`);
      expect(error.message).toContain('local:hf:ORG/REPO[@REVISION]/FILE.gguf');
    }
  });

  it('finds the Hugging Face cache as the Hub tools do', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }, '/home/u')).toBe('/c');
    expect(hubCacheDir({ HF_HOME: '/h' }, '/home/u')).toBe(path.join('/h', 'hub'));
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u')).toBe(path.join('/x', 'huggingface', 'hub'));
    expect(hubCacheDir({}, '/home/u')).toBe(path.join('/home/u', '.cache', 'huggingface', 'hub'));
  });
});

describe('LocalBackend on stories260K', () => {
  it('gives, for chat and for text prompts, the samples node-llama-cpp gives with the same seeds', async () => {
    for (const format of ['chat', 'text'] as const) {
      const backend = await localBackend(format, 1);
      const request =
        format === 'chat'
          ? { label: 'doc chat', messages: MESSAGES, n: 3, seed: 1234, maxTokens: 40, temperature: 1 }
          : {
              label: 'doc text',
              prompt: 'Once upon a time, Tom',
              n: 3,
              seed: 1234,
              maxTokens: 40,
              temperature: 1,
            };
      const result = await backend.complete(request);
      const expected = await Promise.all(
        [0, 1, 2].map((index) => rawSample(format, sampleSeed(1234, index), 40, backend.contextSize)),
      );
      await backend.close();
      expect(result.model).toBe('stories260K.gguf');
      expect(result.choices.map((choice) => choice.text)).toEqual(expected.map((sample) => sample.text));
      expect(new Set(expected.map((sample) => sample.text)).size, 'three different samples').toBe(3);
      expect(result.choices.every((choice) => choice.finishReason === 'length')).toBe(true);
      expect(result.usage).toEqual({
        promptTokens: expected[0]!.promptTokens,
        completionTokens: expected.reduce((sum, sample) => sum + sample.completionTokens, 0),
      });
      expect(result.usage.completionTokens).toBe(120);
    }
  });

  it('runs samples of several requests in parallel sequences, each with its own output', async () => {
    const backend = await localBackend('text', 4);
    const results = await Promise.all(
      [1, 2, 3].map((seed) =>
        backend.complete({
          label: `doc ${seed}`,
          prompt: 'Lily went to the park.',
          n: 2,
          seed,
          maxTokens: 30,
        }),
      ),
    );
    await backend.close();
    const texts = results.flatMap((result) => result.choices.map((choice) => choice.text));
    expect(texts).toHaveLength(6);
    expect(new Set(texts).size).toBe(6);
    for (const result of results) expect(result.usage.completionTokens).toBe(60);
  });

  it("constrains JSON mode with node-llama-cpp's JSON grammar", async () => {
    const backend = await localBackend('chat', 1);
    const ask = (responseFormat?: 'json_object') =>
      backend.complete({ label: 'pairs', messages: MESSAGES, n: 1, seed: 5, maxTokens: 60, responseFormat });
    const [free, json] = [await ask(), await ask('json_object')];
    await backend.close();
    const grammar = await llama.getGrammarFor('json');
    expect(json.choices[0]!.text).toBe((await rawSample('chat', 5, 60, backend.contextSize, grammar)).text);
    expect(json.choices[0]!.text.trimStart().startsWith('{')).toBe(true);
    expect(free.choices[0]!.text.trimStart().startsWith('{')).toBe(false);
  });

  it('refuses, for good, a prompt longer than the context, and caps output at the room left', async () => {
    const backend = await localBackend('text', 1, 256);
    const long = 'Tom and Lily played in the park with a big red ball. '.repeat(40);
    const error = await backend
      .complete({ label: 'doc 7 request rephrase:wiki:0', prompt: long, n: 1, seed: 1, maxTokens: 10 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestFailedError);
    expect(error).toMatchObject({ reason: 'context_length', definitive: true });
    expect((error as Error).message).toMatch(/^doc 7 request rephrase:wiki:0: the prompt has \d+ tokens/);
    const capped = await backend.complete({ label: 'short', prompt: 'Tom', n: 1, seed: 1, maxTokens: 1000 });
    await backend.close();
    const used = capped.usage.promptTokens + capped.usage.completionTokens;
    expect(capped.choices[0]!.finishReason).toBe('length');
    expect(used).toBeLessThanOrEqual(backend.contextSize);
    expect(used).toBeGreaterThan(backend.contextSize - 4);
  });
});

describe('local: errors', () => {
  it('names a missing model file and says what to pass', async () => {
    const missing = path.join(scratch, 'nowhere.gguf');
    const error = await failure(
      createLocalBackend({ spec: `local:${missing}`, concurrency: 1, format: 'chat', cores: 2 }),
    );
    expect(error.message).toContain(missing);
    expect(error.message).toContain('ENOENT');
    expect(error.message).toContain('local:hf:ORG/REPO/FILE.gguf');
  });

  it('names a truncated model file, with its size and what its tensors need', async () => {
    const truncated = path.join(scratch, 'truncated.gguf');
    await fs.writeFile(truncated, readFileSync(MODEL).subarray(0, 600_000));
    const error = await failure(
      createLocalBackend({ spec: `local:${truncated}`, concurrency: 1, format: 'chat', cores: 2 }),
    );
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain(truncated);
    expect(error.message).toMatch(/truncated: it has 600000 bytes, its tensors need \d+/);
    expect(error.message).toContain('Download the model again');
  });
});

describe('local:hf: models from a (loopback) Hub', () => {
  const SPLIT_A = Buffer.alloc(300_000, 7);
  const SPLIT_B = Buffer.alloc(200_000, 9);
  let hub: HubServer;
  let cache: string;

  beforeAll(async () => {
    hub = await startHubServer({
      repos: [
        {
          id: 'tiny/stories-GGUF',
          type: 'model',
          revisions: {
            main: { 'README.md': { bytes: Buffer.from('# stories\n') }, 'stories260K.gguf': { disk: MODEL } },
          },
        },
        {
          id: 'tiny/gated-GGUF',
          type: 'model',
          gated: true,
          revisions: { main: { 'm.gguf': { disk: MODEL } } },
        },
        {
          id: 'tiny/split-GGUF',
          type: 'model',
          revisions: {
            main: {
              'q4/m-00001-of-00002.gguf': { bytes: SPLIT_A },
              'q4/m-00002-of-00002.gguf': { bytes: SPLIT_B },
              'q8/m-00001-of-00001.gguf': { bytes: SPLIT_B },
            },
          },
        },
      ],
    });
  });
  afterAll(() => hub.close());
  beforeEach(async () => {
    cache = await fs.mkdtemp(path.join(scratch, 'hf-cache-'));
    hub.stats.requests.length = 0;
  });

  const options = (token?: string) => ({
    hub: { endpoint: hub.url, token, retry: { baseDelayMs: 1 } },
    cacheDir: cache,
  });

  it('downloads into models--ORG--REPO/{blobs,snapshots,refs} with progress, then reuses it with no request', async () => {
    const progress: number[] = [];
    const spec = 'local:hf:tiny/stories-GGUF/stories260K.gguf';
    const first = await resolveLocalModel(spec, {
      ...options(),
      onProgress: (event) => progress.push(event.receivedBytes),
    });
    const storage = path.join(cache, 'models--tiny--stories-GGUF');
    const commit = (await fs.readFile(path.join(storage, 'refs', 'main'), 'utf8')).trim();
    expect(first).toEqual({
      path: path.join(storage, 'snapshots', commit, 'stories260K.gguf'),
      name: 'tiny/stories-GGUF/stories260K.gguf',
      downloaded: true,
    });
    const source = readFileSync(MODEL);
    expect(sha256(await fs.readFile(first.path))).toBe(sha256(source));
    expect(await fs.readlink(first.path)).toBe(path.join('..', '..', 'blobs', sha256(source)));
    expect(progress.at(-1)).toBe(source.length);
    expect(progress.every((bytes, index) => index === 0 || bytes >= progress[index - 1]!)).toBe(true);
    const requests = hub.stats.requests.length;

    const again = await resolveLocalModel(spec, options());
    expect(again).toEqual({ ...first, downloaded: false });
    expect(hub.stats.requests.length).toBe(requests);
    const pinned = await resolveLocalModel(
      `local:hf:tiny/stories-GGUF@${commit}/stories260K.gguf`,
      options(),
    );
    expect(pinned.path).toBe(first.path);
    expect(hub.stats.requests.length).toBe(requests);
  });

  it('resumes a broken transfer with a Range request and checks the bytes', async () => {
    hub.cutNext(1, 400_000);
    const resolved = await resolveLocalModel('local:hf:tiny/stories-GGUF/stories260K.gguf', options());
    expect(sha256(await fs.readFile(resolved.path))).toBe(sha256(readFileSync(MODEL)));
    const ranges = hub.stats.requests.filter((request) => request.host === 'cdn' && request.range);
    expect(ranges).toHaveLength(1);
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(ranges[0]!.range!)?.[1]);
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThanOrEqual(400_000);
  });

  it('downloads every part of a split model and only those', async () => {
    const resolved = await resolveLocalModel('local:hf:tiny/split-GGUF/q4/m-00001-of-00002.gguf', options());
    const folder = path.dirname(resolved.path);
    expect((await fs.readdir(folder)).sort()).toEqual(['m-00001-of-00002.gguf', 'm-00002-of-00002.gguf']);
    expect(Buffer.compare(await fs.readFile(path.join(folder, 'm-00002-of-00002.gguf')), SPLIT_B)).toBe(0);
    expect(
      (await resolveLocalModel('local:hf:tiny/split-GGUF/q4/m-00001-of-00002.gguf', options())).downloaded,
    ).toBe(false);
  });

  it('loads and runs a downloaded model', async () => {
    const backend = await createLocalBackend({
      spec: 'local:hf:tiny/stories-GGUF/stories260K.gguf',
      concurrency: 1,
      format: 'text',
      cores: 2,
      gpu: false,
      ...options(),
    });
    const result = await backend.complete({
      label: 'hub',
      prompt: 'Once upon a time, Tom',
      n: 1,
      seed: 9,
      maxTokens: 30,
    });
    await backend.close();
    expect(result.model).toBe('tiny/stories-GGUF/stories260K.gguf');
    expect(result.choices[0]!.text).toBe((await rawSample('text', 9, 30, backend.contextSize)).text);
  });

  it('explains a gated model, a missing file, a missing revision and an unknown model', async () => {
    const gated = await failure(resolveLocalModel('local:hf:tiny/gated-GGUF/m.gguf', options()));
    expect(gated.message).toContain('local:hf:tiny/gated-GGUF/m.gguf');
    expect(gated.message).toContain('HF_TOKEN');
    expect((await resolveLocalModel('local:hf:tiny/gated-GGUF/m.gguf', options(TEST_TOKEN))).downloaded).toBe(
      true,
    );

    const file = await failure(resolveLocalModel('local:hf:tiny/stories-GGUF/stories15M.gguf', options()));
    expect(file.message).toContain('has no file "stories15M.gguf"');
    expect(file.message).toContain('GGUF files there: stories260K.gguf');

    const revision = await failure(
      resolveLocalModel('local:hf:tiny/stories-GGUF@v9/stories260K.gguf', options()),
    );
    expect(revision.message).toContain('no revision "v9"');
    expect(revision.message).toContain('Branches and tags: main');

    const unknown = await failure(resolveLocalModel('local:hf:tiny/nothing-GGUF/x.gguf', options()));
    expect(unknown.message).toContain('the model tiny/nothing-GGUF does not exist');
    expect(existsSync(path.join(cache, 'models--tiny--nothing-GGUF'))).toBe(false);
  });
});
