// `megadocs generate` and `run` ask an OpenAI-compatible server what it serves (GET /v1/models, as vLLM lists
// it): the model without --model, a --model it does not serve or several models refused before any request.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './helpers/cli.js';
import { generatedRecords } from './helpers/generated-shards.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { realInput } from './helpers/run-output.js';

let vllm: OpenAiTestServer;
let several: OpenAiTestServer;
let unlisted: OpenAiTestServer;
let file: string;

beforeAll(async () => {
  vllm = await startOpenAiServer({ models: [{ id: 'Qwen/Qwen3-8B', maxModelLen: 40_960 }] });
  several = await startOpenAiServer({ models: [{ id: 'llama-70b' }, { id: 'qwen-8b' }] });
  unlisted = await startOpenAiServer();
  ({ file } = await realInput(await tempDir('megadocs-discovery-'), 5));
});
afterAll(async () => {
  await Promise.all([vllm.close(), several.close(), unlisted.close()]);
});

const generate = (out: string, server: OpenAiTestServer, ...extra: string[]) => [
  'generate',
  file,
  '--out',
  out,
  '--llm',
  server.url,
  '--generations',
  '2',
  ...extra,
];

describe('server discovery', () => {
  it('without --model uses the one model /v1/models lists, and names it and its context size', async () => {
    const out = await tempDir();
    vllm.reset();
    const result = await runCli([...generate(out, vllm), '--json']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/model\s+Qwen\/Qwen3-8B \(context 40960 tokens\)/);
    expect(vllm.stats.modelListings).toBeGreaterThan(0);
    expect(vllm.stats.received).toBeGreaterThan(0);
    const records = await generatedRecords(out);
    expect(records.length).toBe(10);
    expect(new Set(records.map((record) => record.model))).toEqual(new Set(['Qwen/Qwen3-8B']));
    const summary = JSON.parse(result.stdout.toString());
    expect([summary.model, summary.contextSize]).toEqual(['Qwen/Qwen3-8B', 40_960]);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect([manifest.stats.model, manifest.stats.contextSize]).toEqual(['Qwen/Qwen3-8B', 40_960]);
  });

  it('refuses a --model the server does not serve before any request, naming what it serves', async () => {
    vllm.reset();
    const result = await runCli([...generate(await tempDir(), vllm), '--model', 'Qwen/Qwen3-7B', '-q']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `megadocs: ${vllm.url} (--model): the server does not serve the model "Qwen/Qwen3-7B"; it serves "Qwen/Qwen3-8B". Pass --model with one of the names it serves\n`,
    );
    expect(vllm.stats.received).toBe(0);
  });

  it('stops before any request when the server serves several models and no --model is given', async () => {
    several.reset();
    const out = await tempDir();
    const result = await runCli(['run', ...generate(out, several).slice(1), '-q']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `megadocs: ${several.url}: the server serves several models: "llama-70b", "qwen-8b". Pass --model with the one to use\n`,
    );
    expect(several.stats.received).toBe(0);
    const picked = await runCli([...generate(await tempDir(), several), '--model', 'qwen-8b', '-q']);
    expect(picked.code).toBe(0);
  });

  it('keeps working with --model on a server without /v1/models, and asks for --model without it', async () => {
    unlisted.reset();
    const missing = await runCli([...generate(await tempDir(), unlisted), '-q']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('the server does not list its models (no GET /v1/models)');
    expect(missing.stderr).toContain('Pass --model with the name the server serves');
    expect(unlisted.stats.received).toBe(0);
    const out = await tempDir();
    const given = await runCli([...generate(out, unlisted), '--model', 'test-model', '-q']);
    expect(given.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.stats.model).toBe('test-model');
    expect(manifest.stats.contextSize).toBeUndefined();
  });
});
