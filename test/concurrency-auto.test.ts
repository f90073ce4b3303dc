// `--concurrency auto` against the simulated vLLM server (test/helpers/vllm-sim.ts) and the plain loopback server:
// the limit fills the batch and keeps the queue short, follows each endpoint's speed, falls back without metrics.
import { afterEach, describe, expect, it } from 'vitest';
import type { CompletionRequest } from '../lib/backends/backend.js';
import { HttpBackend, type HttpBackendOptions } from '../lib/backends/http-backend.js';
import { createGenerateStats, type GenerateStats } from '../lib/generate/stats.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { startVllmSim, type VllmSim, type VllmSimOptions } from './helpers/vllm-sim.js';

const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function sim(options: Partial<VllmSimOptions>): Promise<VllmSim> {
  const started = await startVllmSim({ timeScale: 0.3, ...options });
  closers.push(() => started.close());
  return started;
}

async function plainServer(options: Parameters<typeof startOpenAiServer>[0]): Promise<OpenAiTestServer> {
  const started = await startOpenAiServer(options);
  closers.push(() => started.close());
  return started;
}

function backend(urls: string[], options: Partial<HttpBackendOptions> = {}): HttpBackend {
  const created = new HttpBackend({
    urls,
    api: 'chat',
    model: 'sim-model',
    concurrency: 'auto',
    timeoutMs: 30_000,
    retry: { maxRetries: 8, baseDelayMs: 5, maxDelayMs: 50 },
    controlIntervalMs: 25,
    stats: createGenerateStats(),
    ...options,
  });
  closers.push(() => created.close());
  return created;
}

function request(seed: number, n = 1): CompletionRequest {
  return {
    label: `doc-${seed}`,
    messages: [
      { role: 'system', content: 'You rewrite documents.' },
      { role: 'user', content: `Document ${seed}: the tornado touched down near Harrisburg at night.` },
    ],
    n,
    maxTokens: 200,
    seed,
  };
}

/**
 * Sends `count` requests as the generate stage does: twice the backend's current limit wanting at once, or at
 * most `consumer` (a slow consumer that takes no more).
 */
async function drive(
  client: HttpBackend,
  count: number,
  n = 1,
  consumer = Number.POSITIVE_INFINITY,
): Promise<void> {
  let next = 0;
  let outstanding = 0;
  await new Promise<void>((resolve, reject) => {
    const fill = () => {
      while (next < count && outstanding < Math.min(consumer, 2 * client.concurrency)) {
        outstanding += 1;
        client.complete(request(next++, n)).then(() => {
          outstanding -= 1;
          if (next >= count && outstanding === 0) resolve();
          else fill();
        }, reject);
      }
    };
    fill();
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function figuresOf(stats: GenerateStats) {
  return stats.concurrency!.endpoints;
}

describe('--concurrency auto with vLLM metrics', () => {
  it('rises until the batch is full and keeps the queue a few requests long', async () => {
    const server = await sim({ maxNumSeqs: 16, outputTokens: [40, 80] });
    const stats = createGenerateStats();
    const client = backend([server.url], { stats });
    await drive(client, 300);
    const simStats = server.stats();
    const [endpoint] = figuresOf(stats);
    expect(endpoint!.signals).toBe('metrics');
    expect(simStats.maxRunning).toBe(16);
    expect(endpoint!.max).toBeGreaterThanOrEqual(16);
    // Queue: the median engine request waited at most a couple of decode steps.
    expect(median(simStats.queueWaitSteps)).toBeLessThanOrEqual(2);
    // The limit settled near the batch, far below the cap of 1024.
    expect(endpoint!.final).toBeLessThan(40);
    expect(simStats.preemptions).toBe(0);
  });

  it('gives the faster of two endpoints more requests, each under its own limit', async () => {
    const fast = await sim({ maxNumSeqs: 16, outputTokens: [40, 80] });
    const slow = await sim({ maxNumSeqs: 16, outputTokens: [40, 80], decodeBaseMs: 40 });
    const stats = createGenerateStats();
    const client = backend([fast.url, slow.url], { stats });
    await drive(client, 400);
    const [fastFigures, slowFigures] = figuresOf(stats);
    expect(fastFigures!.signals).toBe('metrics');
    expect(slowFigures!.signals).toBe('metrics');
    expect(fast.stats().answered).toBeGreaterThan(1.5 * slow.stats().answered);
    expect(fast.stats().maxRunning).toBe(16);
    expect(slow.stats().maxRunning).toBe(16);
  });

  it('backs off when the KV cache preempts sequences: far fewer preemptions than a fixed limit at the batch size', async () => {
    const profile = {
      maxNumSeqs: 64,
      kvCacheTokens: 2_000,
      maxModelLen: 1_000,
      outputTokens: [60, 90] as [number, number],
    };
    const preemptions = async (concurrency: number | 'auto') => {
      const server = await sim(profile);
      await drive(backend([server.url], { concurrency }), 200);
      expect(server.stats().answered).toBe(200);
      return server.stats().preemptions;
    };
    const fixed = await preemptions(64);
    const auto = await preemptions('auto');
    expect(auto).toBeLessThan(fixed / 2);
  });

  it('does not grow past what a slow consumer asks for', async () => {
    const server = await sim({ maxNumSeqs: 64, outputTokens: [20, 40] });
    const stats = createGenerateStats();
    await drive(backend([server.url], { stats }), 120, 1, 4);
    expect(figuresOf(stats)[0]!.max).toBe(8);
    expect(server.stats().maxRunning).toBeLessThanOrEqual(4);
  });
});

describe('--concurrency auto without metrics', () => {
  it('rises above its start on throughput and falls on 503 and 429', async () => {
    const server = await plainServer({ latency: 30 });
    const stats = createGenerateStats();
    const client = backend([server.url], { stats, model: 'test-model' });
    await drive(client, 600);
    const [endpoint] = figuresOf(stats);
    expect(endpoint!.signals).toBe('throughput');
    expect(endpoint!.max).toBeGreaterThan(8);
    expect(server.stats.maxInFlight).toBeGreaterThan(8);
    // The lowest limit set while the faults were answered (the hill-climb may raise it again right after).
    const lowestSince = (from: number) =>
      Math.min(
        ...figuresOf(stats)[0]!
          .limits!.slice(from)
          .map(([, limit]) => limit),
      );
    const before = endpoint!.final!;
    let from = endpoint!.limits!.length;
    server.addFaults(Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 503 })));
    await drive(client, 4);
    const afterOverload = lowestSince(from);
    expect(afterOverload).toBeLessThanOrEqual(Math.floor(before / 2));
    from = figuresOf(stats)[0]!.limits!.length;
    server.addFaults([{ kind: 'status', status: 429, retryAfter: '0' }]);
    await new Promise((resolve) => setTimeout(resolve, 40));
    await drive(client, 1);
    expect(lowestSince(from)).toBeLessThanOrEqual(
      Math.max(1, Math.floor(figuresOf(stats)[0]!.limits!.at(from - 1)![1] / 2)),
    );
  });
});

describe('fixed and capped limits', () => {
  it('--concurrency 8 never has more than 8 in flight at the server', async () => {
    const server = await plainServer({ latency: 5 });
    const stats = createGenerateStats();
    const client = backend([server.url], { stats, concurrency: 8, model: 'test-model' });
    await drive(client, 200);
    expect(client.concurrency).toBe(8);
    expect(server.stats.maxInFlight).toBe(8);
    expect(stats.concurrency).toMatchObject({ mode: 'fixed', limit: 8 });
  });

  it('--max-concurrency caps auto', async () => {
    const server = await sim({ maxNumSeqs: 64, outputTokens: [20, 40] });
    const stats = createGenerateStats();
    const client = backend([server.url], { stats, maxConcurrency: 12 });
    await drive(client, 300);
    const [endpoint] = figuresOf(stats);
    expect(endpoint!.max).toBe(12);
    expect(server.stats().maxRunning).toBeLessThanOrEqual(12);
    expect(stats.concurrency).toMatchObject({ mode: 'auto', max: 12 });
  });
});
