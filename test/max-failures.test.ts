// `--max-failures F`: a run whose requests failed for good for more than F of its documents ends incomplete (exit 3,
// status incomplete, no dataset index, the causes on stderr even with -q); its rerun sends only the failed requests.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../lib/config.js';
import { IncompleteRunError } from '../lib/errors.js';
import { runGenerate } from '../lib/pipeline/generate.js';
import { runMegadocs } from '../lib/pipeline/run.js';
import { REPO_ROOT, runCli, tempDir } from './helpers/cli.js';
import { type Fault, type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const FIXTURE = join(REPO_ROOT, 'fixtures/web-sample.jsonl');
const MODEL = resolve(REPO_ROOT, '../shared/models/stories260K.gguf');
const docs = (await readFile(FIXTURE, 'utf8'))
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { id: string; text: string });

let servers: OpenAiTestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});

async function startServer(): Promise<OpenAiTestServer> {
  const server = await startOpenAiServer();
  servers.push(server);
  return server;
}

/** One `fault` for the next request of each document in `ids` (stage 1 only with `stage1`: MAGA's pairs). */
function failDocuments(server: OpenAiTestServer, ids: string[], fault: Fault, stage1 = false): void {
  for (const id of ids) {
    const snippet = docs.find((doc) => doc.id === id)!.text.slice(0, 40);
    server.addFaults([fault], (request) => {
      const pairs = request.body.response_format?.type === 'json_object';
      return request.promptText.includes(snippet) && (!stage1 || pairs);
    });
  }
}

const BAD_REQUEST: Fault = { kind: 'status', status: 400, message: 'injected bad request' };
const SERVER_ERROR: Fault = { kind: 'status', status: 500, message: 'injected server error' };

function generateArgs(out: string, server: OpenAiTestServer, ...extra: string[]): string[] {
  return [
    'generate',
    FIXTURE,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--generations',
    '1',
    '--compression',
    'none',
    ...extra,
  ];
}

function runArgs(out: string, server: OpenAiTestServer, ...extra: string[]): string[] {
  return [
    'run',
    FIXTURE,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--generations',
    '1',
    '--max-retries',
    '0',
    '--seq-len',
    '128',
    '--workers',
    '1',
    ...extra,
  ];
}

interface Manifest {
  status: string;
  error?: string;
  stats: Record<string, unknown> & { generate?: Record<string, unknown> };
}

async function manifest(out: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')) as Manifest;
}

/** The seeds of the requests the server answered with `status`, sorted. */
function seedsWith(server: OpenAiTestServer, status?: number): number[] {
  return server.log
    .filter((entry) => status === undefined || entry.status === status)
    .map((entry) => entry.seed)
    .sort((a, b) => a - b);
}

/** What an output directory holds besides hidden files (the writer's lock): no dataset after an incomplete run. */
async function runDirContents(out: string): Promise<string[]> {
  return (await readdir(out)).filter((name) => !name.startsWith('.')).sort();
}

async function shardBytes(out: string): Promise<Buffer> {
  const names = (await readdir(out)).filter((name) => name.startsWith('shard.')).sort();
  expect(names.length).toBeGreaterThan(0);
  return Buffer.concat(await Promise.all(names.map((name) => readFile(join(out, name)))));
}

describe('more failed documents than --max-failures', () => {
  it('generate: exit 3, status incomplete, no index.json, causes on stderr under -q; the rerun sends only the failed requests', async () => {
    const server = await startServer();
    failDocuments(server, ['web-0002', 'web-0005', 'web-0009'], BAD_REQUEST);
    const out = await tempDir();
    const first = await runCli(generateArgs(out, server, '--max-failures', '0.1', '--quiet'));
    expect(first.code).toBe(3);
    expect(first.stderr).toContain('3 of 12 documents (25.0%) lost generations');
    expect(first.stderr).toContain('--max-failures 0.1');
    expect(first.stderr).toMatch(
      /http_400: 3 requests, e\.g\. .*document web-000[259] request .*injected bad request/,
    );
    expect(first.stderr).toContain('run the same command again');
    expect(await runDirContents(out)).toEqual(['megadocs.json', 'state']);
    const stopped = await manifest(out);
    expect(stopped.status).toBe('incomplete');
    expect(stopped.error).toContain('3 of 12 documents');
    expect(stopped.stats).toMatchObject({ failedDocuments: 3, failures: { http_400: 3 } });
    const failed = seedsWith(server, 400);
    expect(failed).toHaveLength(3);

    // The server is fixed: the same command sends the three failed requests again, and nothing else.
    server.reset();
    const rerun = await runCli(generateArgs(out, server, '--max-failures', '0.1', '--quiet'));
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    expect(seedsWith(server)).toEqual(failed);
    expect((await manifest(out)).status).toBe('complete');
    const clean = await tempDir();
    expect((await runCli(generateArgs(clean, server, '--quiet'))).code).toBe(0);
    expect(await shardBytes(out)).toEqual(await shardBytes(clean));
    expect(await readFile(join(out, 'index.json'), 'utf8')).toBe(
      await readFile(join(clean, 'index.json'), 'utf8'),
    );
  });

  it('run: stops before the writing phase (no index.json, no shards), exit 3 under -q; a rerun completes', async () => {
    const server = await startServer();
    failDocuments(
      server,
      docs.map((doc) => doc.id),
      SERVER_ERROR,
    );
    const out = await tempDir();
    const first = await runCli(runArgs(out, server, '-q'));
    expect(first.code).toBe(3);
    expect(first.stderr).toContain('12 of 12 documents (100.0%) lost generations');
    expect(first.stderr).toContain('--max-failures 0.01 (1.0%)');
    expect(first.stderr).toMatch(
      /http_500: 12 requests, e\.g\. document web-\d{4} request .*gave up after 1 attempts/,
    );
    expect(await runDirContents(out)).toEqual(['megadocs.json', 'state']);
    const stopped = await manifest(out);
    expect(stopped.status).toBe('incomplete');
    expect(stopped.stats.generate).toMatchObject({ failedDocuments: 12, requests: { failed: 12 } });

    // --max-failures is not part of the run's identity: a rerun with another budget continues the run too.
    server.reset();
    const rerun = await runCli(runArgs(out, server, '--max-failures', '0.5', '-q'));
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    expect(server.stats.received).toBe(12);
    expect((await manifest(out)).status).toBe('complete');
    expect(await readdir(out)).toContain('index.json');
  });

  it('a local model: every prompt over its context ends the run incomplete', async () => {
    const dir = await tempDir();
    const input = join(dir, 'long.jsonl');
    // Fitted to the context with a tokenizer that counts this text at a third of the model's tokens
    // (o200k_base on Chinese, which the model takes byte by byte): even the retry with half the budget is over.
    const long = (id: string) => JSON.stringify({ id, text: '从前有一个小女孩，她住在森林里。'.repeat(300) });
    await writeFile(input, `${long('a')}\n${long('b')}\n`);
    const out = join(dir, 'out');
    const result = await runCli([
      'generate',
      input,
      '--out',
      out,
      '--llm',
      `local:${MODEL}`,
      '--generations',
      '1',
      '--max-tokens',
      '8',
      '--generator-tokenizer',
      'o200k_base',
      '--long-docs',
      'truncate',
      '--quiet',
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('2 of 2 documents (100.0%)');
    expect(result.stderr).toMatch(
      /context_length: 2 requests, e\.g\. document [ab] request .*the context holds/,
    );
    expect((await manifest(out)).status).toBe('incomplete');
  });

  it('the library: runGenerate (a MAGA stage 1 that failed) and runMegadocs reject with IncompleteRunError', async () => {
    const server = await startServer();
    failDocuments(server, ['web-0003', 'web-0007'], BAD_REQUEST, true);
    const generated = join(await tempDir(), 'generate');
    const generate = runGenerate({
      inputs: [FIXTURE],
      out: generated,
      llm: [server.url],
      model: 'test-model',
      recipe: 'maga',
      generations: 2,
    });
    await expect(generate).rejects.toBeInstanceOf(IncompleteRunError);
    await expect(generate).rejects.toMatchObject({ code: 'INCOMPLETE' });
    await expect(generate).rejects.toThrow('2 of 12 documents (16.7%) lost generations');
    expect((await manifest(generated)).status).toBe('incomplete');

    failDocuments(server, ['web-0004'], BAD_REQUEST);
    const ran = join(await tempDir(), 'run');
    const config = parseRunConfig(
      {
        inputs: [FIXTURE],
        out: ran,
        llm: [server.url],
        model: 'test-model',
        generations: 1,
        seqLen: 128,
        workers: 1,
        maxFailures: 0,
      },
      'test',
    );
    const run = runMegadocs(config);
    await expect(run).rejects.toBeInstanceOf(IncompleteRunError);
    await expect(run).rejects.toThrow('1 of 12 documents (8.3%) lost generations');
    expect((await manifest(ran)).status).toBe('incomplete');
    expect(await runDirContents(ran)).toEqual(['megadocs.json', 'state']);
  });
});

describe('within --max-failures', () => {
  it('completes, records the failures in megadocs.json and says how many documents failed', async () => {
    const server = await startServer();
    failDocuments(server, ['web-0006'], BAD_REQUEST);
    const out = await tempDir();
    const result = await runCli(generateArgs(out, server, '--max-failures', '0.1'));
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/documents\s+12, 1 with failed requests\n/);
    const done = await manifest(out);
    expect(done.status).toBe('complete');
    expect(done.stats).toMatchObject({
      documents: 12,
      failedDocuments: 1,
      requests: { failed: 1 },
      failures: { http_400: 1 },
    });
    expect(done.stats.failureExamples).toMatchObject({ http_400: expect.stringContaining('web-0006') });
    expect(await readdir(out)).toContain('index.json');
  });

  it('shows latency "-", not NaN, when every request failed and the budget allows it', async () => {
    const server = await startServer();
    failDocuments(
      server,
      docs.map((doc) => doc.id),
      BAD_REQUEST,
    );
    const result = await runCli(generateArgs(await tempDir(), server, '--max-failures', '1'));
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/latency p50\/p99\s+-\n/);
    expect(result.stderr).not.toContain('NaN');
  });

  it('refuses a --max-failures outside 0..1 before any request', async () => {
    const server = await startServer();
    const result = await runCli(generateArgs(await tempDir(), server, '--max-failures', '1.5'));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"maxFailures" (--max-failures): expected a number <= 1, got 1.5');
    expect(server.stats.received).toBe(0);
  });
});
