// Sporadic faults do not stall the generate stage: while one document waits out a retry (503, or 429 with
// Retry-After), other documents' requests keep the server busy, finished ones wait in a reorder buffer bounded
// by bytes, and the output is that of a run without faults; `--reorder-buffer` sets the bound (not the output).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import _ from 'highland';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../lib/backends/http-backend.js';
import { generateStage } from '../lib/generate/engine.js';
import { resolveRecipe } from '../lib/generate/recipes/index.js';
import { requestSeed } from '../lib/generate/seeds.js';
import { createGenerateStats } from '../lib/generate/stats.js';
import { toAsyncIterable } from '../lib/stream.js';
import type { Doc, DocGenerations } from '../lib/types.js';
import { REPO_ROOT, runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const CONCURRENCY = 4;
let docs: Doc[];
let llm: OpenAiTestServer;

beforeAll(async () => {
  const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).trim().split('\n');
  docs = lines.slice(0, 48).map((line) => {
    const record = JSON.parse(line) as { id: string; text: string };
    return { id: record.id, text: record.text };
  });
  llm = await startOpenAiServer({ latency: 5 });
});

afterAll(async () => {
  await llm.close();
});

/** The seed of document `doc`'s one request (rephrase, 4 generations in one request). */
function seedOf(doc: Doc): number {
  return requestSeed(7, doc.id, 'rephrase', 'wiki:0');
}

async function generate(reorderBuffer?: number): Promise<{ out: DocGenerations[]; waitsLeft: number }> {
  const stats = createGenerateStats();
  const backend = new HttpBackend({
    urls: [llm.url],
    api: 'chat',
    model: 'test-model',
    concurrency: CONCURRENCY,
    timeoutMs: 10_000,
    retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 5 },
    stats,
  });
  const recipe = await resolveRecipe({ recipe: 'rephrase', nPerRequest: 16 });
  const stage = generateStage({
    backend,
    recipe,
    model: 'test-model',
    seed: 7,
    onTruncated: 'keep',
    reorderBuffer,
  });
  const out: DocGenerations[] = [];
  try {
    for await (const item of toAsyncIterable(_(docs).through(stage))) out.push(item);
  } finally {
    await backend.close();
  }
  return { out, waitsLeft: backend.retryWaits.value };
}

function hashOf(out: DocGenerations[]): string {
  return createHash('sha256').update(JSON.stringify(out)).digest('hex');
}

/** Requests of other documents that reached the server before the first document's retry did. */
function othersBeforeRetry(server: OpenAiTestServer, stalled: number): number {
  const tries = server.log.filter((entry) => entry.seed === stalled);
  expect(tries.map((entry) => entry.status)).toEqual([expect.any(Number), 200]);
  expect(tries[0]!.status).not.toBe(200);
  const retryAt = tries[1]!.arrivedAt;
  return server.log.filter((entry) => entry.seed !== stalled && entry.arrivedAt < retryAt).length;
}

describe('a document waiting out a retry', () => {
  let reference: string;

  beforeAll(async () => {
    reference = hashOf((await generate()).out);
  });

  it.each([
    ['503', 503],
    ['429 with Retry-After', 429],
  ])(
    '(%s) does not hold up the others: every other request is sent meanwhile, same output',
    async (_name, status) => {
      llm.reset();
      const stalled = seedOf(docs[0]!);
      // Retry-After 1 s: the retry waits that long whatever the policy's backoff.
      llm.addFaults([{ kind: 'status', status, retryAfter: '1' }], (request) => request.seed === stalled);
      const { out, waitsLeft } = await generate();
      // 0.1's ordered window of 4 x C = 16 documents let 15 others through, then the server sat idle.
      expect(othersBeforeRetry(llm, stalled)).toBe(docs.length - 1);
      expect(llm.stats.maxInFlight).toBe(CONCURRENCY);
      expect(waitsLeft).toBe(0);
      expect(hashOf(out)).toBe(reference);
    },
  );

  it('holds no more finished documents than --reorder-buffer bytes (one at least), same output', async () => {
    llm.reset();
    const stalled = seedOf(docs[0]!);
    llm.addFaults([{ kind: 'status', status: 503, retryAfter: '1' }], (request) => request.seed === stalled);
    // Room for the input text of the first 8 documents: while the first waits, at most 7 others are admitted.
    const bound = docs.slice(0, 8).reduce((sum, doc) => sum + Buffer.byteLength(doc.text), 0);
    const { out } = await generate(bound);
    const others = othersBeforeRetry(llm, stalled);
    expect(others).toBeGreaterThan(0);
    expect(others).toBeLessThanOrEqual(7);
    expect(hashOf(out)).toBe(reference);
  });
});

describe('--reorder-buffer', () => {
  const input = join(REPO_ROOT, 'fixtures/web-sample.jsonl');
  const args = (out: string, size: string) => [
    'generate',
    input,
    '--out',
    out,
    '--llm',
    llm.url,
    '--model',
    'test-model',
    '--reorder-buffer',
    size,
    '--quiet',
  ];

  it('takes a size, is recorded, and is not part of the run: a rerun with another is the same run', async () => {
    const out = await tempDir();
    const first = await runCli(args(out, '64KiB'));
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.options.reorderBuffer).toBe(65_536);
    const again = await runCli(args(out, '1MiB'));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('is already complete');
    const bad = await runCli(args(await tempDir(), 'lots'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected a size such as 65536, 64MiB or 1GB, got "lots"');
  });
});
