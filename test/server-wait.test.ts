// Waiting for an LLM server that does not answer yet or any more (--wait-for-server): the probes, no request sent
// and no retry spent while none answers, the wait reported, exit 2 after S seconds, a restarted server taken back.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CompletionRequest } from '../lib/backends/backend.js';
import { OpenAiEndpoint } from '../lib/backends/client.js';
import { HttpBackend, type HttpBackendOptions } from '../lib/backends/http-backend.js';
import { parseGenerateConfig } from '../lib/config.js';
import { MegadocsError } from '../lib/errors.js';
import { createGenerateStats } from '../lib/generate/stats.js';
import { type CliResult, REPO_ROOT, runCli, startCli, tempDir, waitCli } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { datasetFiles, realInput } from './helpers/run-output.js';

const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function llmServer(options: Parameters<typeof startOpenAiServer>[0] = {}): Promise<OpenAiTestServer> {
  const started = await startOpenAiServer(options);
  closers.push(() => started.close().catch(() => {}));
  return started;
}

/** A port nothing listens on (taken from the system, then released). */
async function freePort(): Promise<number> {
  const server = await startOpenAiServer();
  await server.close();
  return server.port;
}

/** A server that answers each GET path with a fixed status (404 when not listed), recording the headers. */
async function statusServer(
  statuses: Record<string, number>,
): Promise<{ url: string; seen: Array<{ path: string; authorization?: string }> }> {
  const seen: Array<{ path: string; authorization?: string }> = [];
  const server = createServer((request, response) => {
    const path = request.url ?? '';
    seen.push({ path, authorization: request.headers.authorization });
    response.writeHead(statuses[path] ?? 404, { 'content-type': 'application/json' });
    response.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen };
}

function endpoint(baseUrl: string, apiKey?: string): OpenAiEndpoint {
  const created = new OpenAiEndpoint({
    baseUrl,
    api: 'chat',
    model: 'm',
    apiKey,
    connections: 1,
    timeoutMs: 5_000,
  });
  closers.push(() => created.close());
  return created;
}

function backend(urls: string[], options: Partial<HttpBackendOptions> = {}): HttpBackend {
  const created = new HttpBackend({
    urls,
    api: 'chat',
    model: 'test-model',
    concurrency: 4,
    timeoutMs: 10_000,
    // No retries at all: a request that waits must not spend one.
    retry: { maxRetries: 0, baseDelayMs: 5, maxDelayMs: 20 },
    stats: createGenerateStats(),
    ...options,
  });
  closers.push(() => created.close());
  return created;
}

function request(seed: number): CompletionRequest {
  return {
    label: `doc-${seed}`,
    messages: [{ role: 'user', content: 'The tornado touched down near Harrisburg at night.' }],
    n: 1,
    maxTokens: 100,
    seed,
  };
}

/** Resolves once `check` holds, looking every 20 ms. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('probes', () => {
  it('finds a server answering on a 2xx from /health or /v1/models, or on 4xx from both', async () => {
    for (const statuses of [
      { '/health': 200 },
      { '/v1/models': 200 },
      {},
      { '/health': 503, '/v1/models': 200 },
    ]) {
      const { url } = await statusServer(statuses);
      await expect(endpoint(url).probe()).resolves.toEqual({ answers: true });
    }
  });

  it('says why a server does not answer: a 5xx (still loading) or no connection', async () => {
    const loading = await statusServer({ '/health': 503, '/v1/models': 503 });
    await expect(endpoint(loading.url).probe()).resolves.toEqual({
      answers: false,
      reason: '/health: HTTP 503, /v1/models: HTTP 503',
    });
    const noHealth = await statusServer({ '/v1/models': 502 });
    await expect(endpoint(noHealth.url).probe()).resolves.toEqual({
      answers: false,
      reason: '/health: HTTP 404, /v1/models: HTTP 502',
    });
    const port = await freePort();
    await expect(endpoint(`http://127.0.0.1:${port}/v1`).probe()).resolves.toEqual({
      answers: false,
      reason: 'connection refused',
    });
  });

  it('asks /health at the server root and /models under the base URL, with the API key', async () => {
    const server = await statusServer({ '/health': 404, '/v1/models': 200 });
    await endpoint(server.url, 'sk-probe').probe();
    expect(server.seen).toEqual([
      { path: '/health', authorization: 'Bearer sk-probe' },
      { path: '/v1/models', authorization: 'Bearer sk-probe' },
    ]);
  });
});

describe('the HTTP backend while no server answers', () => {
  it('sends nothing and spends no retry until a server listens, reporting the wait as it goes', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const warnings: string[] = [];
    const stats = createGenerateStats();
    const client = backend([url], {
      stats,
      serverWait: { waitMs: 30_000, reportEveryMs: 100 },
      onWarning: (message) => warnings.push(message),
    });
    const answers = Promise.all([1, 2, 3, 4, 5, 6].map((seed) => client.complete(request(seed))));
    // The first report when the wait starts, then one every reportEveryMs.
    await until(() => warnings.length >= 3);
    const llm = await llmServer({ port });
    await expect(answers).resolves.toHaveLength(6);
    expect(warnings[0]).toBe(`waiting for ${url}: connection refused, 0 s of 30`);
    expect(warnings[1]).toMatch(new RegExp(`^waiting for ${url}: connection refused, \\d+ s of 30$`));
    expect(warnings.at(-1)).toMatch(new RegExp(`^${url} answers, after \\d+ s$`));
    expect(stats.retries).toEqual({});
    expect(stats.requests.sent).toBe(6);
    expect(llm.stats.received).toBe(6);
  });

  it('gives up after the wait with the wait as the message: a MegadocsError for every request', async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const client = backend([`http://127.0.0.1:${port}/v1`], {
      serverWait: { waitMs: 300, reportEveryMs: 100 },
      onWarning: (message) => warnings.push(message),
    });
    const failures = await Promise.all(
      [1, 2, 3].map((seed) => client.complete(request(seed)).catch((error: unknown) => error)),
    );
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(MegadocsError);
      expect((failure as Error).message).toMatch(
        new RegExp(
          `^gave up waiting for http://127\\.0\\.0\\.1:${port}/v1: connection refused, 0 s of 0\\.3\\. .*--wait-for-server`,
        ),
      );
    }
    expect(warnings[0]).toMatch(/^waiting for .*connection refused, 0 s of 0\.3$/);
  });

  it('waits for a server that went down mid-run instead of spending retries, and takes it back', async () => {
    const first = await llmServer();
    const warnings: string[] = [];
    const stats = createGenerateStats();
    const client = backend([first.url], {
      stats,
      serverWait: { waitMs: 30_000, reportEveryMs: 60_000 },
      onWarning: (message) => warnings.push(message),
    });
    await Promise.all([1, 2, 3].map((seed) => client.complete(request(seed))));
    await first.close();
    const answers = Promise.all([4, 5, 6, 7, 8].map((seed) => client.complete(request(seed))));
    await until(() => warnings.length > 0);
    expect(warnings[0]).toBe(`waiting for ${first.url}: connection refused, 0 s of 30`);
    const back = await llmServer({ port: first.port });
    await expect(answers).resolves.toHaveLength(5);
    expect(stats.retries).toEqual({});
    expect(back.stats.received).toBe(5);
  });

  it('with several endpoints, waits only when none answers', async () => {
    const alive = await llmServer();
    const port = await freePort();
    const warnings: string[] = [];
    const client = backend([`http://127.0.0.1:${port}/v1`, alive.url], {
      retry: { maxRetries: 4, baseDelayMs: 1, maxDelayMs: 2 },
      onWarning: (message) => warnings.push(message),
    });
    await Promise.all(Array.from({ length: 20 }, (_, seed) => client.complete(request(seed))));
    expect(alive.stats.completed).toBe(20);
    expect(warnings).toEqual([]);
  });
});

describe('megadocs generate and run with --wait-for-server', () => {
  it('takes seconds, 600 by default, 0 to give up at once; a negative value names the flag', () => {
    const config = { inputs: ['data.jsonl'], out: 'out', llm: 'http://127.0.0.1:8000/v1', model: 'm' };
    expect(parseGenerateConfig(config, 'x').waitForServer).toBe(600);
    expect(parseGenerateConfig({ ...config, waitForServer: 0 }, 'x').waitForServer).toBe(0);
    expect(() => parseGenerateConfig({ ...config, waitForServer: -1 }, 'x')).toThrow(
      /"waitForServer" \(--wait-for-server\)/,
    );
  });

  const SAMPLE = join(REPO_ROOT, 'fixtures/web-sample.jsonl');
  const generateArgs = (input: string, out: string, url: string, ...extra: string[]) => [
    'generate',
    input,
    '--out',
    out,
    '--llm',
    url,
    '--model',
    'test-model',
    '--generations',
    '1',
    '--json',
    ...extra,
  ];

  /** Starts the CLI; `output` grows with its stderr, `done` is how it ended. */
  function started(args: string[]): { output: () => string; done: Promise<CliResult> } {
    const child = startCli(args);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    return { output: () => stderr, done: waitCli(child) };
  }

  function summaryOf(result: CliResult): {
    retries: Record<string, number>;
    failures: Record<string, number>;
  } {
    return JSON.parse(result.stdout.toString()) as ReturnType<typeof summaryOf>;
  }

  it('waits for a server that starts late, sends nothing before, and writes what a normal run writes', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const waitedOut = await tempDir();
    const run = started(generateArgs(SAMPLE, waitedOut, url, '--wait-for-server', '60'));
    await until(() => run.output().includes('waiting for'));
    const llm = await llmServer({ port });
    const waited = await run.done;
    expect(waited.code).toBe(0);
    expect(waited.stderr).toContain(`warning: waiting for ${url}: connection refused, 0 s of 60\n`);
    expect(waited.stderr).toMatch(new RegExp(`warning: ${url} answers, after \\d+ s\n`));
    expect(summaryOf(waited)).toMatchObject({ retries: {}, failures: {} });
    expect(llm.stats.received).toBe(12);

    const normalOut = await tempDir();
    const normal = await runCli(generateArgs(SAMPLE, normalOut, url, '--quiet'));
    expect(normal.code).toBe(0);
    expect(await datasetFiles(waitedOut)).toEqual(await datasetFiles(normalOut));
  });

  it('exits 2 after --wait-for-server seconds with no server, saying so on stderr; megadocs.json says failed', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const out = await tempDir();
    const result = await runCli([
      'run',
      SAMPLE,
      '--out',
      out,
      '--llm',
      url,
      '--model',
      'test-model',
      '--seq-len',
      '128',
      '--wait-for-server',
      '2',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`warning: waiting for ${url}: connection refused, 0 s of 2\n`);
    expect(result.stderr).toMatch(
      new RegExp(`megadocs: gave up waiting for ${url}: connection refused, \\d+ s of 2\\. Start the server`),
    );
    const record = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')) as Record<string, unknown>;
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/gave up waiting for/);
  });

  it('stops with 130 on Ctrl-C while it waits for a server that never answers, marked interrupted', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const out = await tempDir();
    const child = startCli(generateArgs(SAMPLE, out, url, '--wait-for-server', '600'));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const done = waitCli(child);
    await until(() => stderr.includes('waiting for'));
    child.kill('SIGINT');
    // Without the signal reaching the wait it would go on for --wait-for-server (600 s), past the test's timeout.
    const result = await done;
    expect(result.code).toBe(130);
    const record = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8')) as Record<string, unknown>;
    expect(record.status).toBe('interrupted');
  });

  it('waits out a server stopped mid-run and restarted: no failed document, no retry spent', async () => {
    const { file } = await realInput(await tempDir(), 120);
    const first = await llmServer({ latency: 10 });
    // No retries at all: the requests cut off by the stop and those refused after it must wait, not fail.
    const args = (out: string) =>
      generateArgs(
        file,
        out,
        first.url,
        '--concurrency',
        '4',
        '--max-retries',
        '0',
        '--wait-for-server',
        '60',
      );
    const waitedOut = await tempDir();
    const run = started(args(waitedOut));
    await until(() => first.stats.completed >= 30);
    await first.close();
    await until(() => run.output().includes('waiting for'));
    const back = await llmServer({ port: first.port, latency: 10 });
    const waited = await run.done;
    expect(waited.code).toBe(0);
    expect(summaryOf(waited)).toMatchObject({ retries: {}, failures: {} });
    expect(waited.stderr).toContain(`warning: waiting for ${first.url}: connection refused, 0 s of 60\n`);
    expect(back.stats.completed).toBeGreaterThan(0);

    const normalOut = await tempDir();
    expect((await runCli([...args(normalOut), '--quiet'])).code).toBe(0);
    expect(await datasetFiles(waitedOut)).toEqual(await datasetFiles(normalOut));
  });
});
