// `megadocs plan`: a run's command line planned with no request at all (no /v1/models either), its request counts
// equal to what the run then sends (long documents segmented, MAGA's two stages, stretch's splits), Parquet row
// counts from the footers with a seeded sample, time and cost, and megadocs.json's planned-against-actual figures.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../lib/config.js';
import { planRun } from '../lib/cost-plan.js';
import { REPO_ROOT, runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { sharedDataRepos } from './helpers/hub-repos.js';
import { startHubServer } from './helpers/hub-server.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const FIXTURE = join(REPO_ROOT, 'fixtures/web-sample.jsonl');
let server: OpenAiTestServer;
let longInput: string;

beforeAll(async () => {
  server = await startOpenAiServer({ models: [{ id: 'test-model', max_model_len: 4096 }] });
  // Wikipedia articles of 14 to 5,658 characters: with a context of 2,048 tokens (256 of output), the long ones are segmented.
  const lines = (await readFile(join(SHARED_DATA, 'wikipedia-2349.jsonl'), 'utf8')).split('\n').slice(0, 16);
  longInput = join(await tempDir(), 'wiki.jsonl');
  await writeFile(longInput, `${lines.join('\n')}\n`);
});
afterAll(() => server.close());

function runArgs(input: string, out: string, ...extra: string[]): string[] {
  return [
    input,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--seq-len',
    '128',
    '--workers',
    '1',
    ...extra,
  ];
}

async function manifestOf(out: string) {
  return JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
}

describe('megadocs plan', () => {
  it('plans a run command line without sending anything, and the run then sends the requests planned', async () => {
    for (const recipe of [
      ['--recipe', 'rephrase', '--generations', '3', '--n-per-request', '2'],
      ['--recipe', 'maga', '--generations', '5'],
      ['--recipe', 'stretch', '--assemble', 'stretch', '--generations', '2'],
    ]) {
      const out = join(await tempDir(), 'out');
      const args = runArgs(longInput, out, '--context-size', '2048', '--max-tokens', '256', ...recipe);
      server.reset();
      const plan = await runCli(['plan', ...args, '--json']);
      expect(plan.stderr).toBe('');
      expect(plan.code).toBe(0);
      expect(server.stats.received).toBe(0);
      expect(server.stats.byPath).toEqual({});
      expect(existsSync(out)).toBe(false);
      const planned = JSON.parse(plan.stdout.toString());
      expect(planned.documents).toBe(16);
      expect(planned.estimated).toBe(false);

      const run = await runCli(['run', ...args, '--quiet']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const manifest = await manifestOf(out);
      // Segmented documents make more requests than documents; the plan counted them as the run made them.
      expect(manifest.stats.generate.longDocs.segmented).toBeGreaterThan(0);
      expect(planned.requests).toBe(manifest.stats.generate.requests.completed);
      expect(manifest.plan.planned.requests).toBe(planned.requests);
      expect(manifest.plan.actual.requests).toBe(planned.requests);
      expect(manifest.plan.actual.documents).toBe(16);
      expect(manifest.plan.actual.dataset.sequences).toBe(manifest.stats.output.sequences);
    }
  });

  it('prints documents, tokens, requests, output, time at --server-tokens-per-s and cost at --price-per-mtok', async () => {
    const args = [
      'plan',
      ...runArgs(FIXTURE, 'unused', '--generations', '4'),
      '--llm',
      'http://127.0.0.1:1/v1',
      '--server-tokens-per-s',
      '1000',
      '--price-per-mtok',
      '0.5,2',
    ];
    const text = await runCli(args);
    expect(text.code).toBe(0);
    const shown = text.stdout.toString();
    expect(shown).toMatch(/documents\s+12\n/);
    expect(shown).toMatch(/requests\s+12 \(48 samples, n up to 16; 48 generations asked\)/);
    expect(shown).toMatch(/output tokens\s+\S+ expected \(a rewrite 0\.57 of its prompt's tokens/);
    expect(shown).toMatch(/x 2 endpoints/);
    const plan = JSON.parse((await runCli([...args, '--json'])).stdout.toString());
    // Two endpoints share the generated tokens.
    expect(plan.llmSeconds).toBeCloseTo(plan.outputTokens / 2000, 6);
    expect(plan.cost.total).toBeCloseTo((plan.promptTokens * 0.5 + plan.outputTokens * 2) / 1e6, 9);
    expect(plan.dataset.sequences).toBe(
      Math.floor(plan.dataset.realTokens / 128) + Math.floor(plan.dataset.syntheticTokens / 128),
    );
    const bad = await runCli([...args, '--price-per-mtok', 'cheap']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--price-per-mtok.*two prices IN,OUT/);
  });

  it('counts Parquet rows from the footers and plans on a seeded sample', async () => {
    const config = parseRunConfig(
      {
        inputs: [join(SHARED_DATA, 'fineweb-300.parquet')],
        out: 'unused',
        llm: ['http://127.0.0.1:1/v1'],
        model: 'm',
      },
      'test',
    );
    const sampled = await planRun(config, { sample: 25 });
    expect(sampled).toMatchObject({ documents: 300, sampled: 25, estimated: true });
    expect(await planRun(config, { sample: 25 })).toEqual(sampled);
    const all = await planRun(config);
    expect(all).toMatchObject({ documents: 300, sampled: 300, estimated: false });
    // A sample of a tenth estimates the whole within a third.
    expect(Math.abs(sampled.inputTokens! - all.inputTokens!) / all.inputTokens!).toBeLessThan(0.35);
    expect(sampled.requests).toBe(all.requests);
    // Mixed inputs: JSONL documents counted as read, Parquet rows from the footer.
    const mixed = await planRun(
      { ...config, inputs: [FIXTURE, join(SHARED_DATA, 'fineweb-300.parquet')] },
      { sample: 30 },
    );
    expect(mixed).toMatchObject({ documents: 312, sampled: 30 });
  });

  it('reads only the footers and the sampled row groups of hf:// Parquet files', async () => {
    const hub = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 2) });
    try {
      const result = await runCli(
        [
          'plan',
          'hf://datasets/HuggingFaceFW/fineweb/data/**/*.parquet',
          '--llm',
          'http://127.0.0.1:1/v1',
          '--sample',
          '3',
          '--json',
        ],
        { HF_ENDPOINT: hub.url },
      );
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout.toString())).toMatchObject({
        documents: 600,
        sampled: 3,
        estimated: true,
      });
      const served = [...hub.stats.bytesServed.values()].reduce((sum, bytes) => sum + bytes, 0);
      // Two files of 6 row groups each: the footers and the 3 sampled row groups (each with the 2 that the Hub
      // reader prefetches after it), not the whole files.
      const fileBytes = (await readFile(join(SHARED_DATA, 'fineweb-300.parquet'))).byteLength;
      expect(served).toBeLessThan(0.7 * 2 * fileBytes);
    } finally {
      await hub.close();
    }
  });
});
