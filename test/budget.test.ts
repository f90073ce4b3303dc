// Budgets (`--max-output-tokens`, `--max-documents`) on generate and run: the output is cut after the first documents
// in input order that reach it (status budget-reached), a rerun with a larger budget sends no request twice and
// writes the bytes one run with that budget writes at once, and a rerun with the same budget has nothing to do.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../lib/config.js';
import { runGenerate } from '../lib/pipeline/generate.js';
import { runMegadocs } from '../lib/pipeline/run.js';
import { runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { datasetFiles } from './helpers/run-output.js';

let server: OpenAiTestServer;
let input: string;
let docCount: number;

beforeAll(async () => {
  // Answers of 1 to 15 ms, drawn per request: documents finish out of input order.
  server = await startOpenAiServer({ latency: { uniform: [1, 15] } });
  const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).split('\n').slice(0, 30);
  docCount = lines.length;
  input = join(await tempDir(), 'docs.jsonl');
  await writeFile(input, `${lines.join('\n')}\n`);
});
afterAll(() => server.close());

async function manifestOf(out: string) {
  return JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
}

/** The request seeds (one per request) a run sends; throws when it sends one twice. */
async function seedsSentBy<T>(work: () => Promise<T>): Promise<{ result: T; seeds: Set<number> }> {
  server.reset();
  const result = await work();
  const counts = [...server.stats.receivedBySeed.entries()];
  expect(counts.filter(([, count]) => count > 1)).toEqual([]);
  return { result, seeds: new Set(counts.map(([seed]) => seed)) };
}

/** No request of `later` was sent by an earlier run into the same --out. */
function expectNoneResent(earlier: Set<number>[], later: Set<number>): void {
  for (const seeds of earlier) expect([...later].filter((seed) => seeds.has(seed))).toEqual([]);
}

function generateConfig(out: string, extra: Record<string, unknown>) {
  return {
    inputs: [input],
    out,
    llm: [server.url],
    model: 'test-model',
    generations: 2,
    compression: 'none',
    ...extra,
  };
}

describe('--max-output-tokens on generate', () => {
  it('cuts at a document boundary in input order; a larger budget continues it to the bytes of one run', async () => {
    const out = await tempDir();
    const { result: first, seeds: firstSeeds } = await seedsSentBy(() =>
      runGenerate(generateConfig(out, { concurrency: 8, maxOutputTokens: 1000 })),
    );
    const firstManifest = await manifestOf(out);
    expect(firstManifest.status).toBe('budget-reached');
    expect(firstManifest.budget).toMatchObject({
      reason: 'max-output-tokens',
      limits: { maxOutputTokens: 1000 },
    });
    expect(first.budget).toEqual(firstManifest.budget);
    const kept = firstManifest.budget.documents as number;
    expect(kept).toBeGreaterThan(1);
    expect(kept).toBeLessThan(docCount);
    // Only the last document kept crosses the budget.
    expect(firstManifest.budget.outputTokens).toBeGreaterThanOrEqual(1000);
    expect(first.documents).toBe(kept);

    // A larger budget: only new requests are sent (documents started past the cut were journaled).
    const { result: second, seeds: secondSeeds } = await seedsSentBy(() =>
      runGenerate(generateConfig(out, { concurrency: 8, maxOutputTokens: 2500 })),
    );
    expectNoneResent([firstSeeds], secondSeeds);
    expect(second.budget?.documents).toBeGreaterThan(kept);

    // One run with the larger budget at once, at another concurrency, writes the same bytes.
    const once = await tempDir();
    const oneRun = await runGenerate(generateConfig(once, { concurrency: 2, maxOutputTokens: 2500 }));
    expect(oneRun.budget).toEqual(second.budget);
    expect(await datasetFiles(out)).toEqual(await datasetFiles(once));

    // The same budget again: already complete, no request.
    const again = await seedsSentBy(() =>
      runGenerate(generateConfig(out, { concurrency: 8, maxOutputTokens: 2500 })),
    );
    expect(again.result.alreadyComplete).toBe(true);
    expect(again.seeds.size).toBe(0);

    // No budget: the run completes, every document kept, still no request sent twice.
    const { result: all, seeds: lastSeeds } = await seedsSentBy(() =>
      runGenerate(generateConfig(out, { concurrency: 8 })),
    );
    expectNoneResent([firstSeeds, secondSeeds], lastSeeds);
    expect(all.documents).toBe(docCount);
    expect(all.budget).toBeUndefined();
    expect((await manifestOf(out)).status).toBe('complete');
    // A budget the input does not reach: complete, nothing left out.
    const whole = await tempDir();
    const enough = await runGenerate(generateConfig(whole, { maxDocuments: docCount, maxOutputTokens: 1e9 }));
    expect(enough.budget).toBeUndefined();
    expect((await manifestOf(whole)).status).toBe('complete');
  });
});

describe('--max-documents on run', () => {
  it('keeps the first N documents; a larger N continues it to the bytes of one run with it', async () => {
    const config = (out: string, maxDocuments: number, concurrency: number) =>
      parseRunConfig(
        {
          inputs: [input],
          out,
          llm: [server.url],
          model: 'test-model',
          generations: 2,
          seqLen: 128,
          workers: 1,
          concurrency,
          maxDocuments,
        },
        'test',
      );
    const out = await tempDir();
    const { result: first, seeds: firstSeeds } = await seedsSentBy(() => runMegadocs(config(out, 5, 8)));
    expect(first.budget).toMatchObject({ reason: 'max-documents', documents: 5 });
    expect(first.assemble.documentsIn).toBe(5);
    expect((await manifestOf(out)).status).toBe('budget-reached');
    const { result: second, seeds: secondSeeds } = await seedsSentBy(() => runMegadocs(config(out, 12, 8)));
    expect(second.budget).toMatchObject({ reason: 'max-documents', documents: 12 });
    expectNoneResent([firstSeeds], secondSeeds);
    expect(secondSeeds.size).toBeGreaterThan(0);
    const once = await tempDir();
    await runMegadocs(config(once, 12, 3));
    expect(await datasetFiles(out)).toEqual(await datasetFiles(once));
  });

  it('CLI: exit 0 with status budget-reached and a budget row; budgets are not part of the run identity', async () => {
    const out = await tempDir();
    const args = (budget: string) => [
      'generate',
      input,
      '--out',
      out,
      '--llm',
      server.url,
      '--model',
      'test-model',
      '--generations',
      '1',
      '--max-documents',
      budget,
    ];
    const first = await runCli(args('3'));
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/budget\s+--max-documents 3 reached: the first 3 documents kept/);
    expect((await manifestOf(out)).status).toBe('budget-reached');
    const second = await runCli([...args('4'), '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout.toString()).documents).toBe(4);
    const bad = await runCli(args('0'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/maxDocuments|--max-documents/);
  });
});
