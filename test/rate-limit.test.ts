// Rate limits for hosted APIs: OpenAI's x-ratelimit headers and durations, the token buckets of --rpm/--tpm on a
// fake clock, and a run against the simulated server's hosted mode (few 429s, most of the allowed rate).
import { afterEach, describe, expect, it } from 'vitest';
import type { CompletionRequest } from '../lib/backends/backend.js';
import { HttpBackend } from '../lib/backends/http-backend.js';
import { estimatedTokens, RatePacer } from '../lib/backends/rate-limit.js';
import { parseResetDuration, readRateLimitHeaders } from '../lib/backends/ratelimit-headers.js';
import { createGenerateStats } from '../lib/generate/stats.js';
import { startVllmSim, type VllmSim } from './helpers/vllm-sim.js';

const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function request(seed: number, maxTokens = 100, n = 1): CompletionRequest {
  return {
    label: `doc-${seed}`,
    messages: [{ role: 'user', content: 'x'.repeat(400) }],
    n,
    maxTokens,
    seed,
  };
}

describe('x-ratelimit headers', () => {
  it('reads durations as OpenAI writes them', () => {
    expect(parseResetDuration('1s')).toBe(1000);
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('20ms')).toBe(20);
    expect(parseResetDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseResetDuration('0.5')).toBe(500);
    expect(parseResetDuration('soon')).toBeUndefined();
    expect(parseResetDuration('5 s')).toBeUndefined();
  });

  it('reads the limits, what remains and when it resets; nothing when none is there', () => {
    expect(
      readRateLimitHeaders({
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-remaining-tokens': ['29000'],
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-reset-tokens': '2s',
      }),
    ).toEqual({
      limitRequests: 500,
      limitTokens: 30000,
      remainingRequests: 499,
      remainingTokens: 29000,
      resetRequestsMs: 120,
      resetTokensMs: 2000,
    });
    expect(readRateLimitHeaders({ 'x-ratelimit-remaining-requests': 'lots' })).toBeUndefined();
    expect(readRateLimitHeaders({ 'content-type': 'application/json' })).toBeUndefined();
  });
});

describe('RatePacer', () => {
  it('charges the prompt (4 characters a token) and max_tokens for each sample', () => {
    expect(estimatedTokens(request(1, 100, 3))).toBe(100 + 300);
  });

  it('keeps requests under --rpm: a burst of 0.1 s worth, then one every 60/rpm/0.95 s', () => {
    let now = 0;
    const pacer = new RatePacer({ rpm: 600 }, () => now);
    let sent = 0;
    // A simulated minute, asking every 10 ms.
    for (; now < 60_000; now += 10) {
      if (pacer.waitMs(1) === 0) {
        pacer.take(1);
        sent += 1;
      }
    }
    expect(sent).toBeGreaterThanOrEqual(0.9 * 600);
    expect(sent).toBeLessThanOrEqual(600);
  });

  it('keeps tokens under --tpm and says how long a request must wait', () => {
    let now = 0;
    const pacer = new RatePacer({ tpm: 60_000 }, () => now);
    // 950 tokens a second, 95 at most at once: a request of 500 waits for a full bucket, then goes into debt.
    expect(pacer.waitMs(500)).toBe(0);
    pacer.take(500);
    expect(pacer.waitMs(100)).toBe(Math.ceil((405 + 95) / 0.95));
    now += 1000;
    expect(pacer.waitMs(100)).toBe(0);
  });

  it('learns a limit from the headers, and waits out a reset when nothing remains', () => {
    let now = 0;
    const pacer = new RatePacer({}, () => now);
    expect(pacer.waitMs(1)).toBe(0);
    pacer.observe({ limitRequests: 60, remainingRequests: 0, resetRequestsMs: 3000 });
    expect(pacer.waitMs(1)).toBeGreaterThanOrEqual(3000);
    now += 3000 + Math.ceil(1000 / 0.95);
    expect(pacer.waitMs(1)).toBe(0);
  });

  it('keeps a limit given by a flag over the one the headers state', () => {
    const now = 0;
    const pacer = new RatePacer({ rpm: 6000 }, () => now);
    pacer.observe({ limitRequests: 60 });
    pacer.take(1);
    // At 60 a minute a second request would wait a second; at 6000 (x 0.95) it waits about 10 ms.
    expect(pacer.waitMs(1)).toBeLessThan(20);
  });

  it('pauses after a 429 for its Retry-After', () => {
    let now = 0;
    const pacer = new RatePacer({ rpm: 6000 }, () => now);
    pacer.throttled(500);
    expect(pacer.waitMs(1)).toBeGreaterThan(500);
    now += 600;
    expect(pacer.waitMs(1)).toBe(0);
  });
});

describe("against a hosted API (the simulated server's hosted mode)", () => {
  async function hosted(limits: { rpm?: number; tpm?: number }): Promise<VllmSim> {
    // 2-second windows: per real minute, 30 times the limits.
    const sim = await startVllmSim({ timeScale: 0.05, hosted: { ...limits, windowMs: 2000 } });
    closers.push(() => sim.close());
    return sim;
  }

  function hostedClient(sim: VllmSim, rateLimits: { rpm?: number; tpm?: number }): HttpBackend {
    const client = new HttpBackend({
      urls: [sim.url],
      api: 'chat',
      model: 'sim-model',
      concurrency: 'auto',
      timeoutMs: 30_000,
      rateLimits,
      stats: createGenerateStats(),
    });
    closers.push(() => client.close());
    return client;
  }

  async function send(sim: VllmSim, rateLimits: { rpm?: number; tpm?: number }, count: number) {
    const client = hostedClient(sim, rateLimits);
    await Promise.all(Array.from({ length: count }, (_, seed) => client.complete(request(seed, 50))));
  }

  // 1.5 windows' worth of requests at once: unpaced, a third of them would be refused.
  it('--rpm: all requests answered, almost none refused with 429', async () => {
    const sim = await hosted({ rpm: 30 });
    await send(sim, { rpm: 900 }, 45);
    const stats = sim.stats();
    expect(stats.answered).toBe(45);
    expect(stats.rateLimited).toBeLessThanOrEqual(1);
  });

  it('--tpm: tokens estimated from the prompt and max_tokens keep it under the limit', async () => {
    // Each request: 100 prompt tokens + 50 max_tokens = 150; 3,000 per window is 20 requests per window.
    const sim = await hosted({ tpm: 3_000 });
    await send(sim, { tpm: 90_000 }, 30);
    const stats = sim.stats();
    expect(stats.answered).toBe(30);
    expect(stats.rateLimited).toBeLessThanOrEqual(1);
  });

  it('a request held back by --rpm fails with the abort when its signal aborts, and sends nothing', async () => {
    const sim = await hosted({});
    const client = hostedClient(sim, { rpm: 1 });
    await client.complete(request(0, 5));
    // The next request may go in a minute: it waits in the lease until the signal aborts.
    const controller = new AbortController();
    const held = client.complete(request(1, 5), controller.signal);
    setTimeout(() => controller.abort(new Error('stopped by the test')), 200);
    await expect(held).rejects.toThrow('stopped by the test');
    expect(sim.stats().received).toBe(1);
  });
});
