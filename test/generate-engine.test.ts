// The generate stage end to end against the loopback server: which answer belongs to which document,
// input order and byte-identical output at any concurrency, MAGA's two stages, stretch, filters,
// backpressure, input cuts, failures sent again on a rerun, and a resumed run that re-sends nothing it had.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import _ from 'highland';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../lib/backends/http-backend.js';
import { type GenerateStageOptions, generateStage } from '../lib/generate/engine.js';
import { cutAtLineBoundary } from '../lib/generate/input.js';
import { Journal } from '../lib/generate/journal.js';
import { type RecipeOptions, resolveRecipe } from '../lib/generate/recipes/index.js';
import { requestSeed } from '../lib/generate/seeds.js';
import { createGenerateStats, type GenerateStats } from '../lib/generate/stats.js';
import { DEFAULT_TEMPLATES, fillSlots } from '../lib/generate/templates/index.js';
import { toAsyncIterable } from '../lib/stream.js';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';
import type { Doc, DocGenerations } from '../lib/types.js';
import { SHARED_DATA, tempDir } from './helpers/cli.js';
import {
  completionText,
  type LatencySpec,
  magaPairsAnswer,
  type OpenAiTestServer,
  startOpenAiServer,
} from './helpers/openai-server.js';

let docs: Doc[];
let encoder: Encoder;
let llm: OpenAiTestServer;

beforeAll(async () => {
  const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).trim().split('\n');
  docs = lines.map((line) => {
    const record = JSON.parse(line) as { id: string; text: string };
    return { id: record.id, text: record.text };
  });
  encoder = await loadEncoder('o200k_base');
  llm = await startOpenAiServer();
});

afterAll(async () => {
  await llm.close();
});

interface RunOptions extends Partial<GenerateStageOptions> {
  recipe?: RecipeOptions;
  concurrency?: number;
  docs?: Doc[];
  latency?: LatencySpec;
}

async function generate(options: RunOptions = {}): Promise<{ out: DocGenerations[]; stats: GenerateStats }> {
  const { recipe: recipeOptions, concurrency, docs: input, latency, ...stageOptions } = options;
  llm.setLatency(latency ?? 0);
  const stats = options.stats ?? createGenerateStats();
  const backend = new HttpBackend({
    urls: [llm.url],
    api: 'chat',
    model: 'test-model',
    concurrency: concurrency ?? 4,
    timeoutMs: 10_000,
    retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 5 },
    stats,
  });
  const recipe = await resolveRecipe(recipeOptions ?? { recipe: 'rephrase', nPerRequest: 16 });
  const out: DocGenerations[] = [];
  try {
    const stage = generateStage({
      backend,
      recipe,
      model: 'test-model',
      seed: 7,
      onTruncated: 'keep',
      stats,
      ...stageOptions,
    });
    for await (const item of toAsyncIterable(_(input ?? docs.slice(0, 30)).through(stage))) out.push(item);
  } finally {
    await backend.close();
  }
  return { out, stats };
}

function hashOf(out: DocGenerations[]): string {
  return createHash('sha256').update(JSON.stringify(out)).digest('hex');
}

function userPrompt(template: string, slots: Parameters<typeof fillSlots>[1]): string {
  return fillSlots(DEFAULT_TEMPLATES[template]!.messages.at(-1)!.content, slots);
}

describe('rephrase', () => {
  it('gives each document its own answers, styles round-robin, n per request, in input order', async () => {
    llm.reset();
    const { out, stats } = await generate({
      recipe: { recipe: 'rephrase', styles: ['wiki', 'qa'], generations: 4, nPerRequest: 2 },
    });
    expect(out.map((item) => item.doc.id)).toEqual(docs.slice(0, 30).map((doc) => doc.id));
    expect(llm.stats.received).toBe(60);
    expect(llm.log.every((entry) => entry.n === 2)).toBe(true);
    for (const { doc, generations, failed, filtered } of out) {
      expect([failed, filtered]).toEqual([0, 0]);
      expect(generations.map((g) => [g.index, g.style])).toEqual([
        [0, 'wiki'],
        [1, 'qa'],
        [2, 'wiki'],
        [3, 'qa'],
      ]);
      for (const generation of generations) {
        const first = generation.style === 'wiki' ? 0 : 1;
        const seed = requestSeed(7, doc.id, 'rephrase', `${generation.style}:${first}`);
        const choice = (generation.index - first) / 2;
        const prompt = userPrompt(`rephrase.${generation.style}`, { text: doc.text });
        expect(generation).toMatchObject({ docId: doc.id, recipe: 'rephrase', seed, model: 'test-model' });
        expect(generation.text).toBe(completionText(prompt, seed, choice, 1024).text);
      }
    }
    const completion = out
      .flatMap((item) => item.generations)
      .reduce((sum, g) => sum + g.usage!.completionTokens, 0);
    expect(completion).toBe(stats.tokens.rephrase!.completion);
    expect(stats.requests).toMatchObject({ sent: 60, completed: 60, replayed: 0, failed: 0, inFlight: 0 });
  });

  it('produces identical output at any concurrency and any response order', async () => {
    const recipe = { recipe: 'rephrase', styles: ['wiki', 'facts', 'qa'], generations: 5, nPerRequest: 1 };
    const serial = await generate({ recipe, concurrency: 1, reorderBuffer: 1, docs: docs.slice(0, 12) });
    const jittery = await generate({
      recipe,
      concurrency: 16,
      docs: docs.slice(0, 12),
      latency: { lognormal: { medianMs: 4, sigma: 1 } },
    });
    expect(jittery.out.flatMap((item) => item.generations)).toHaveLength(60);
    expect(hashOf(jittery.out)).toBe(hashOf(serial.out));
  });

  it('keeps or drops generations cut by max tokens (finish_reason length), counting them', async () => {
    const recipe = { recipe: 'rephrase', generations: 2, nPerRequest: 2, sampling: { maxTokens: 30 } };
    const kept = await generate({ recipe, docs: docs.slice(0, 5) });
    const all = kept.out.flatMap((item) => item.generations);
    expect(all).toHaveLength(10);
    expect(all.every((g) => g.finishReason === 'length' && g.text.split(' ').length === 30)).toBe(true);
    expect(kept.stats.truncated).toBe(10);
    const dropped = await generate({ recipe, docs: docs.slice(0, 5), onTruncated: 'drop' });
    expect(dropped.out.every((item) => item.generations.length === 0 && item.filtered === 2)).toBe(true);
    expect(dropped.stats.filtered).toEqual({ truncated: 10 });
  });

  it('cuts inputs to --max-input-tokens at a line boundary before prompting', async () => {
    llm.reset();
    const sample = docs.slice(0, 20);
    const { out, stats } = await generate({ docs: sample, textTokenizer: encoder, maxInputTokens: 120 });
    const long = sample.filter((doc) => encoder.encode(doc.text).length > 120);
    expect(long.length).toBeGreaterThan(5);
    expect(stats.inputsCut).toBe(long.length);
    const doc = long[0]!;
    const seed = requestSeed(7, doc.id, 'rephrase', 'wiki:0');
    const cut = cutAtLineBoundary(doc.text, 120, encoder).text;
    const prompt = userPrompt('rephrase.wiki', { text: cut });
    expect(out[sample.indexOf(doc)]!.generations[0]!.text).toBe(completionText(prompt, seed, 0, 1024).text);
  });
});

describe('MAGA', () => {
  it('asks for 5 genre/audience pairs as JSON, then makes 5 rewrites per document', async () => {
    llm.reset();
    const sample = docs.slice(40, 50);
    const { out, stats } = await generate({ recipe: { recipe: 'maga', nPerRequest: 1 }, docs: sample });
    expect(llm.stats.received).toBe(sample.length * 6);
    for (const { doc, generations, filtered } of out) {
      expect(generations.length + filtered).toBe(5);
      const pairsSeed = requestSeed(7, doc.id, 'maga', 'pairs:0');
      const pairs = magaPairsAnswer(userPrompt('maga.pairs', { text: doc.text }), pairsSeed);
      for (const generation of generations) {
        const i = generation.index + 1;
        expect(generation.genre).toBe(pairs[`genre_${i}`]);
        expect(generation.audience).toBe(pairs[`audience_${i}`]);
      }
    }
    expect(stats.generations + Object.values(stats.filtered).reduce((a, b) => a + b, 0)).toBe(50);
    expect(stats.generations).toBeGreaterThanOrEqual(45);
  });

  it('retries stage 1 once on invalid JSON, then skips the document with a count', async () => {
    llm.reset();
    const [once, twice] = [docs[60]!, docs[61]!];
    const stage1Of = (doc: Doc) => (request: { seed: number }) =>
      request.seed === requestSeed(7, doc.id, 'maga', 'pairs:0') ||
      request.seed === requestSeed(7, doc.id, 'maga', 'pairs:1');
    llm.addFaults([{ kind: 'invalid-content' }], stage1Of(once));
    llm.addFaults([{ kind: 'invalid-content' }, { kind: 'invalid-content' }], stage1Of(twice));
    const { out, stats } = await generate({
      recipe: { recipe: 'maga', nPerRequest: 1 },
      docs: [once, twice],
    });
    expect(out[0]!.generations.length + out[0]!.filtered).toBe(5);
    expect(out[1]).toMatchObject({ generations: [], skipped: 'invalid_pairs_json' });
    expect(stats.retries).toEqual({ invalid_pairs_json: 2 });
    expect(stats.skipped).toEqual({ invalid_pairs_json: 1 });
    expect(llm.stats.received).toBe(2 + 5 + 2);
  });
});

describe('stretch', () => {
  it('asks one rationale per split point, from the text before and after it', async () => {
    llm.reset();
    const sample = docs.slice(100, 105);
    const { out } = await generate({
      recipe: { recipe: 'stretch', generations: 3, nPerRequest: 1 },
      docs: sample,
      textTokenizer: encoder,
    });
    for (const { doc, generations } of out) {
      expect(generations.map((g) => [g.index, g.split])).toEqual([
        [0, 1],
        [1, 2],
        [2, 3],
      ]);
      const offsets = generations.map((g) => g.splitOffset!);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      for (const generation of generations) {
        const prompt = userPrompt('stretch.rationale', {
          prefix: doc.text.slice(0, generation.splitOffset),
          suffix: doc.text.slice(generation.splitOffset),
        });
        expect(generation.text).toBe(completionText(prompt, generation.seed, 0, 512).text);
      }
    }
  });
});

describe('flow control and failures', () => {
  it('slows the requests down to a slow consumer: nothing buffers without bound', async () => {
    llm.reset();
    const backend = new HttpBackend({
      urls: [llm.url],
      api: 'chat',
      model: 'm',
      concurrency: 4,
      timeoutMs: 10_000,
    });
    const recipe = await resolveRecipe({ recipe: 'rephrase', nPerRequest: 16 });
    const stream = _(docs).through(
      generateStage({ backend, recipe, model: 'm', seed: 1, onTruncated: 'keep' }),
    );
    const iterator = toAsyncIterable(stream);
    for (let pulled = 0; pulled < 5; pulled += 1) await iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const settled = llm.stats.received;
    // 5 documents consumed, at most 2 x C more prepared (one request each): work the consumer has not taken.
    expect(settled).toBeLessThanOrEqual(5 + 8 + 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(llm.stats.received).toBe(settled);
    await iterator.return(undefined);
    await backend.close();
  });

  it('keeps a consumer that takes documents slowly no more than 2 x C documents ahead', async () => {
    llm.reset();
    const backend = new HttpBackend({
      urls: [llm.url],
      api: 'chat',
      model: 'm',
      concurrency: 4,
      timeoutMs: 10_000,
    });
    const recipe = await resolveRecipe({ recipe: 'rephrase', nPerRequest: 16 });
    const stream = _(docs).through(
      generateStage({ backend, recipe, model: 'm', seed: 1, onTruncated: 'keep' }),
    );
    const iterator = toAsyncIterable(stream);
    // The server answers at once; the consumer takes a document every 20 ms.
    for (let pulled = 0; pulled < 20; pulled += 1) {
      await iterator.next();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(llm.stats.received).toBeLessThanOrEqual(20 + 2 * 4 + 1);
    await iterator.return(undefined);
    await backend.close();
  });

  it('journals no rejected request (400): a rerun sends only those again, then completes', async () => {
    const stateDir = await tempDir();
    const strict = await startOpenAiServer({ maxPromptWords: 700 });
    const fixed = await startOpenAiServer();
    const sample = docs.slice(0, 20);
    const run = async (server: OpenAiTestServer, journaled: boolean) => {
      const journal = journaled ? await Journal.open({ stateDir, configHash: 'x' }) : undefined;
      const stats = createGenerateStats();
      const backend = new HttpBackend({
        urls: [server.url],
        api: 'chat',
        model: 'm',
        concurrency: 4,
        timeoutMs: 10_000,
        stats,
      });
      const recipe = await resolveRecipe({ recipe: 'rephrase', generations: 3, nPerRequest: 16 });
      const stage = generateStage({
        backend,
        recipe,
        model: 'm',
        seed: 1,
        onTruncated: 'keep',
        journal,
        stats,
      });
      const out: DocGenerations[] = [];
      for await (const item of toAsyncIterable(_(sample).through(stage))) out.push(item);
      journal?.close();
      await backend.close();
      return { out, stats };
    };
    const first = await run(strict, true);
    const rejected = first.out.filter((item) => item.failed === 3);
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.length).toBeLessThan(20);
    expect(first.stats.failures).toEqual({ http_400: rejected.length });
    expect(first.stats.failureExamples.http_400).toMatch(
      /document \S+ request rephrase:wiki:0: HTTP 400: .*maximum context/,
    );
    expect(strict.stats.received).toBe(20);
    // Rerun against the same server: the answers are replayed, the rejected requests are sent again.
    const again = await run(strict, true);
    expect(strict.stats.received).toBe(20 + rejected.length);
    expect(again.stats.requests.replayed).toBe(20 - rejected.length);
    expect(hashOf(again.out)).toBe(hashOf(first.out));
    // Once the server takes them, a rerun sends only those and completes: the output of a run without faults.
    const rerun = await run(fixed, true);
    expect(fixed.stats.received).toBe(rejected.length);
    expect(rerun.stats.requests).toMatchObject({ replayed: 20 - rejected.length, failed: 0 });
    fixed.reset();
    const clean = await run(fixed, false);
    expect(hashOf(rerun.out)).toBe(hashOf(clean.out));
    await strict.close();
    await fixed.close();
  });

  it('resumes an interrupted run from its journal: nothing journaled is sent again, same output', async () => {
    const recipe = { recipe: 'rephrase', styles: ['wiki', 'qa'], generations: 4, nPerRequest: 1 };
    const sample = docs.slice(0, 40);
    const reference = await generate({ recipe, docs: sample, concurrency: 8, latency: 2 });
    const stateDir = await tempDir();
    llm.reset();
    const controller = new AbortController();
    const first = await Journal.open({ stateDir, configHash: 'x' });
    const interrupted = generate({
      recipe,
      docs: sample,
      concurrency: 8,
      latency: 2,
      journal: first,
      signal: controller.signal,
    });
    const watch = setInterval(() => {
      if (llm.stats.completed >= 60) controller.abort(new Error('stop'));
    }, 1);
    await expect(interrupted).rejects.toThrow();
    clearInterval(watch);
    await first.close();
    const journaled =
      (await readFile(join(stateDir, 'generate.journal.00000.jsonl'), 'utf8')).trim().split('\n').length - 1;
    expect(journaled).toBeGreaterThan(30);
    expect(journaled).toBeLessThan(160);

    llm.reset();
    const second = await Journal.open({ stateDir, configHash: 'x' });
    const resumed = await generate({ recipe, docs: sample, concurrency: 8, journal: second });
    await second.close();
    expect(llm.stats.received).toBe(160 - journaled);
    expect(resumed.stats.requests.replayed).toBe(journaled);
    expect(hashOf(resumed.out)).toBe(hashOf(reference.out));
  });
});
