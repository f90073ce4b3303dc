// The HTTP backend against the loopback OpenAI-compatible server: answers, retries by cause, Retry-After,
// rejections, fatal errors, the concurrency bound and endpoint health, all checked on the server side.
import { afterEach, describe, expect, it } from 'vitest';
import { type CompletionRequest, RequestFailedError } from '../lib/backends/backend.js';
import { HttpBackend, type HttpBackendOptions } from '../lib/backends/http-backend.js';
import { MegadocsError } from '../lib/errors.js';
import { createGenerateStats } from '../lib/generate/stats.js';
import { parseRetryAfter, retryDelay } from '../lib/retry.js';
import { completionText, type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const servers: OpenAiTestServer[] = [];
const backends: HttpBackend[] = [];

afterEach(async () => {
  await Promise.all(backends.splice(0).map((backend) => backend.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function server(options: Parameters<typeof startOpenAiServer>[0] = {}): Promise<OpenAiTestServer> {
  const started = await startOpenAiServer(options);
  servers.push(started);
  return started;
}

function backend(urls: string[], options: Partial<HttpBackendOptions> = {}): HttpBackend {
  const created = new HttpBackend({
    urls,
    api: 'chat',
    model: 'test-model',
    concurrency: 4,
    timeoutMs: 10_000,
    retry: { maxRetries: 4, baseDelayMs: 5, maxDelayMs: 20 },
    health: { faultsToEject: 3, cooldownMs: 10, maxCooldownMs: 20 },
    stats: createGenerateStats(),
    ...options,
  });
  backends.push(created);
  return created;
}

function request(
  seed: number,
  n = 1,
  text = 'The tornado touched down near Harrisburg at night.',
): CompletionRequest {
  return {
    label: `doc-${seed}`,
    messages: [
      { role: 'system', content: 'You rewrite documents.' },
      { role: 'user', content: text },
    ],
    n,
    maxTokens: 500,
    seed,
  };
}

describe('answers', () => {
  it('returns the n choices of one chat request, in index order, with the usage', async () => {
    const llm = await server();
    const result = await backend([llm.url]).complete(request(7, 3));
    expect(result.choices.map((choice) => choice.text)).toEqual(
      [0, 1, 2].map((choice) => completionText(request(7).messages[1]!.content, 7, choice, 500).text),
    );
    expect(result.model).toBe('test-model');
    expect(result.usage.promptTokens).toBe(3 + 8);
    expect(result.usage.completionTokens).toBe(
      result.choices.reduce((sum, choice) => sum + choice.text.split(' ').length, 0),
    );
    expect(llm.stats.byPath['/v1/chat/completions']).toBe(1);
  });

  it('speaks the completions API for base models, with the plain-text prompt', async () => {
    const llm = await server();
    const result = await backend([llm.url], { api: 'completions' }).complete({
      ...request(3),
      prompt: 'Once upon a time',
    });
    expect(result.choices[0]!.text).toBe(completionText('Once upon a time', 3, 0, 500).text);
    expect(llm.stats.byPath['/v1/completions']).toBe(1);
  });

  it('sends the API key as a bearer token, and stops the run when the server refuses it', async () => {
    const llm = await server({ apiKey: 'sk-right' });
    await expect(backend([llm.url], { apiKey: 'sk-right' }).complete(request(1))).resolves.toBeDefined();
    const refused = backend([llm.url], { apiKey: 'sk-wrong' }).complete(request(1));
    await expect(refused).rejects.toThrow(/refused the credentials.*OPENAI_API_KEY/);
    await expect(refused).rejects.not.toBeInstanceOf(RequestFailedError);
    expect(llm.stats.received).toBe(2);
  });

  it('stops with a hint when the server ignores n', async () => {
    const llm = await server({ ignoreN: true });
    await expect(backend([llm.url]).complete(request(1, 4))).rejects.toThrow(/--n-per-request 1/);
  });
});

describe('retries', () => {
  it('retries 503, resets, truncated bodies, invalid JSON and slow headers, counting each cause', async () => {
    const llm = await server();
    llm.addFaults([
      { kind: 'status', status: 503 },
      { kind: 'reset' },
      { kind: 'truncated' },
      { kind: 'invalid-json' },
    ]);
    const stats = createGenerateStats();
    const client = backend([llm.url], { stats, concurrency: 1 });
    const result = await client.complete(request(11));
    expect(result.choices[0]!.text).toBe(completionText(request(11).messages[1]!.content, 11, 0, 500).text);
    expect(stats.retries).toEqual({ http_503: 1, connection_reset: 1, truncated_body: 1, bad_response: 1 });
    expect(llm.stats.received).toBe(5);
    expect(llm.stats.completed).toBe(1);

    llm.addFaults([{ kind: 'slow-headers', delayMs: 1_000 }]);
    const impatient = createGenerateStats();
    await backend([llm.url], { stats: impatient, timeoutMs: 200 }).complete(request(12));
    expect(impatient.retries).toEqual({ timeout: 1 });
  });

  it('honours Retry-After in seconds and as an HTTP date (measured on the server)', async () => {
    const llm = await server();
    llm.addFaults([{ kind: 'status', status: 429, retryAfter: '1' }], (received) => received.seed === 21);
    const inTwoSeconds = new Date(Date.now() + 2_000).toUTCString();
    llm.addFaults(
      [{ kind: 'status', status: 429, retryAfter: inTwoSeconds }],
      (received) => received.seed === 22,
    );
    const stats = createGenerateStats();
    // The backoff alone would retry after at most 20 ms.
    await Promise.all([
      backend([llm.url], { stats }).complete(request(21)),
      backend([llm.url]).complete(request(22)),
    ]);
    for (const [seed, atLeastMs] of [
      [21, 1_000],
      [22, 1_000],
    ] as const) {
      const attempts = llm.log.filter((entry) => entry.seed === seed);
      expect(attempts.map((entry) => entry.status)).toEqual([429, 200]);
      expect(attempts[1]!.arrivedAt - attempts[0]!.respondedAt!).toBeGreaterThanOrEqual(atLeastMs - 5);
    }
    expect(stats.retries).toEqual({ http_429: 1 });
  });

  it('does not retry a 400: the request fails for good with the server message', async () => {
    const llm = await server({ maxPromptWords: 5 });
    const stats = createGenerateStats();
    const failure = await backend([llm.url], { stats })
      .complete(request(5))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RequestFailedError);
    expect((failure as RequestFailedError).definitive).toBe(true);
    expect((failure as RequestFailedError).reason).toBe('http_400');
    expect((failure as Error).message).toMatch(/maximum context length is 5 tokens/);
    expect((failure as Error).message).toMatch(/doc-5/);
    expect(llm.stats.received).toBe(1);
    expect(stats.retries).toEqual({});
  });

  it('gives up after --max-retries and says so (not definitive: a rerun tries again)', async () => {
    const llm = await server();
    llm.addFaults(Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 502 })));
    const failure = await backend([llm.url], { retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 } })
      .complete(request(9))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RequestFailedError);
    expect((failure as RequestFailedError).definitive).toBe(false);
    expect((failure as Error).message).toMatch(/gave up after 3 attempts/);
    expect(llm.stats.received).toBe(3);
  });

  it('reads Retry-After and spreads backoff between half and all of its ceiling', () => {
    expect(parseRetryAfter('3', 0)).toBe(3_000);
    expect(parseRetryAfter('0.5', 0)).toBe(500);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
    const policy = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect(retryDelay(2, policy, undefined, () => 0)).toBe(200);
    expect(retryDelay(2, policy, undefined, () => 1)).toBe(400);
    expect(retryDelay(8, policy, undefined, () => 1)).toBe(1_000);
    expect(retryDelay(0, policy, 5_000)).toBe(5_000);
  });
});

describe('concurrency and endpoints', () => {
  it('never has more than C requests in flight at the server, and does reach C', async () => {
    const llm = await server({ latency: { lognormal: { medianMs: 10, sigma: 0.8 } } });
    const client = backend([llm.url], { concurrency: 6 });
    await Promise.all(Array.from({ length: 120 }, (_, seed) => client.complete(request(seed))));
    expect(llm.stats.received).toBe(120);
    expect(llm.stats.maxInFlight).toBe(6);
  });

  it('spreads requests over endpoints, holding C across all of them', async () => {
    const first = await server({ latency: 5 });
    const second = await server({ latency: 5 });
    const client = backend([first.url, second.url], { concurrency: 8 });
    await Promise.all(Array.from({ length: 200 }, (_, seed) => client.complete(request(seed))));
    expect(first.stats.received + second.stats.received).toBe(200);
    expect(first.stats.received).toBeGreaterThan(50);
    expect(second.stats.received).toBeGreaterThan(50);
    expect(first.stats.maxInFlight + second.stats.maxInFlight).toBeLessThanOrEqual(8 + 8);
    expect(Math.max(first.stats.maxInFlight, second.stats.maxInFlight)).toBeLessThanOrEqual(8);
  });

  it('takes out an endpoint that refuses connections and probes it back in', async () => {
    const alive = await server({ latency: 2 });
    const revived = await server();
    const port = revived.port;
    await revived.close();
    servers.splice(servers.indexOf(revived), 1);
    const stats = createGenerateStats();
    const client = backend([`http://127.0.0.1:${port}/v1`, alive.url], {
      concurrency: 4,
      stats,
      health: { faultsToEject: 3, cooldownMs: 20, maxCooldownMs: 40 },
    });
    await Promise.all(Array.from({ length: 60 }, (_, seed) => client.complete(request(seed))));
    expect(alive.stats.completed).toBe(60);
    expect(stats.retries.connection_refused).toBeGreaterThan(0);
    // Far fewer refused attempts than requests: the dead endpoint was out of rotation.
    expect(stats.retries.connection_refused).toBeLessThan(20);
    expect(client.endpointsDown).toBe(1);

    const back = await server({ port });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await Promise.all(Array.from({ length: 40 }, (_, seed) => client.complete(request(100 + seed))));
    expect(back.stats.completed).toBeGreaterThan(0);
    expect(client.endpointsDown).toBe(0);
  });
});

describe('errors', () => {
  it('names the server and explains a 404 (wrong base URL)', async () => {
    const llm = await server();
    const wrong = backend([llm.url.replace('/v1', '/v2')]).complete(request(1));
    await expect(wrong).rejects.toBeInstanceOf(MegadocsError);
    await expect(wrong).rejects.toThrow(/not found.*Check --llm/);
  });
});
