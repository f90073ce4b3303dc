// The simulated vLLM server (test/helpers/vllm-sim.ts): batching, queueing, KV preemption, n samples, /metrics,
// /v1/models, the context check, hosted-mode 429s and headers, and its peak figure; counts and steps, no wall time.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';
import { completionText } from './helpers/openai-answers.js';
import { startOpenAiServer } from './helpers/openai-server.js';
import {
  DEFAULT_SIM_OPTIONS,
  peakTokensPerS,
  startVllmSim,
  type VllmSim,
  type VllmSimOptions,
} from './helpers/vllm-sim.js';
import { type EngineParameters, type EngineStats, VllmEngine } from './helpers/vllm-sim-engine.js';
import { formatDuration } from './helpers/vllm-sim-ratelimit.js';

const sims: VllmSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

async function sim(options: Partial<VllmSimOptions>): Promise<VllmSim> {
  const started = await startVllmSim({ timeScale: 0.01, ...options });
  sims.push(started);
  return started;
}

interface Answer {
  status: number;
  headers: Headers;
  body: {
    choices?: Array<{ index: number; text?: string; message?: { content: string }; finish_reason: string }>;
    usage?: { prompt_tokens: number; completion_tokens: number };
    error?: { message: string; type: string; code: string };
    message?: string;
  };
}

async function post(base: string, route: string, body: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Answer['body'],
  };
}

function chat(base: string, text: string, extra: Record<string, unknown> = {}): Promise<Answer> {
  return post(base, '/chat/completions', {
    model: 'sim-model',
    messages: [{ role: 'user', content: text }],
    max_tokens: 512,
    seed: 7,
    ...extra,
  });
}

const GO_DURATION = /^((\d+h)?(\d+m)?\d+(\.\d+)?s|\d+(\.\d+)?ms)$/;

/** The value of a metric line with vLLM's labels in Prometheus text. */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{`));
  return Number(line?.split(' ').at(-1));
}

const ENGINE: EngineParameters = {
  maxNumSeqs: 4,
  kvCacheTokens: 100_000,
  prefillTokensPerS: 1e9,
  decodeBaseMs: 10,
  decodePerSeqMs: 0.05,
  timeScale: 0.01,
};

/** Submits all requests at once (before the first step) and resolves with the stats once every one is done. */
async function runEngine(
  parameters: Partial<EngineParameters>,
  requests: Array<{ promptTokens: number; outputTokens: number[] }>,
): Promise<EngineStats> {
  const engine = new VllmEngine({ ...ENGINE, ...parameters });
  await Promise.all(
    requests.map((request) => new Promise<void>((resolve) => engine.submit({ ...request, onDone: resolve }))),
  );
  expect(engine.runningCount + engine.waitingCount).toBe(0);
  return engine.stats;
}

describe('vllm-sim engine', () => {
  it('runs at most maxNumSeqs at once and queues the rest, FCFS, in whole steps', async () => {
    const stats = await runEngine(
      { maxNumSeqs: 4 },
      Array.from({ length: 12 }, () => ({ promptTokens: 10, outputTokens: [20] })),
    );
    expect(stats.maxRunning).toBe(4);
    expect(stats.maxWaiting).toBe(12);
    expect(stats.generatedTokens).toBe(12 * 20);
    expect(stats.steps).toBe(3 * 20);
    expect(stats.queueWaitSteps).toEqual([0, 0, 0, 0, 20, 20, 20, 20, 40, 40, 40, 40]);
    expect(stats.waitingPerStep.slice(0, 2)).toEqual([12, 8]);
    expect(stats.runningSum / stats.steps).toBe(4);
    expect(stats.promptTokens).toBe(12 * 10);
    expect(stats.preemptions).toBe(0);
  });

  it('reaches its theoretical peak with the batch full (simulated time)', async () => {
    const stats = await runEngine(
      { maxNumSeqs: 8 },
      Array.from({ length: 32 }, () => ({ promptTokens: 1, outputTokens: [50] })),
    );
    const options = { ...DEFAULT_SIM_OPTIONS, ...ENGINE, maxNumSeqs: 8 };
    const achieved = stats.generatedTokens / (stats.busyMs / 1000);
    expect(achieved / peakTokensPerS(options, { promptTokens: 1, outputTokens: 50 })).toBeCloseTo(1, 3);
    // Decode only at the full batch: 8 tokens per (10 + 0.05 x 8) ms, times 1 / timeScale.
    expect(peakTokensPerS(options)).toBeCloseTo((8 / 10.4) * 1000 * 100, 3);
    // A KV cache too small for the batch lowers the peak of a workload.
    const small = { ...options, maxNumSeqs: 256, kvCacheTokens: 20_000 };
    expect(peakTokensPerS(small, { promptTokens: 1000, outputTokens: 400 })).toBeLessThan(
      peakTokensPerS(small) / 3,
    );
  });

  it('preempts the youngest sequence when the KV cache would overflow, then recomputes it', async () => {
    // 8 samples of 10 prompt tokens growing to 60 tokens each need 560 tokens of KV; the cache holds 200.
    const stats = await runEngine(
      { maxNumSeqs: 8, kvCacheTokens: 200 },
      Array.from({ length: 8 }, () => ({ promptTokens: 10, outputTokens: [60] })),
    );
    expect(stats.preemptions).toBeGreaterThan(0);
    expect(stats.recomputedTokens).toBeGreaterThan(0);
    expect(stats.generatedTokens).toBe(8 * 60);
    expect(stats.finished).toBe(8);
  });

  it('shares the prompt of n samples: one prefill, one copy in the KV cache', async () => {
    // 4 samples of one 90-token prompt fit a 100-token cache only because the prompt is held once.
    const stats = await runEngine({ maxNumSeqs: 4, kvCacheTokens: 100 }, [
      { promptTokens: 90, outputTokens: [2, 2, 2, 2] },
    ]);
    expect(stats).toMatchObject({
      promptTokens: 90,
      prefilledRequests: 1,
      maxRunning: 4,
      steps: 2,
      preemptions: 0,
    });
  });
});

describe('vllm-sim server', () => {
  it('queues requests over maxNumSeqs and counts KV preemptions in /metrics', async () => {
    const server = await sim({ maxNumSeqs: 8, kvCacheTokens: 200, maxModelLen: 200, outputTokens: 60 });
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_v, i) =>
        chat(server.url, `a short prompt number ${i}`, { max_tokens: 100 }),
      ),
    );
    expect(answers.map((answer) => answer.body.usage?.completion_tokens)).toEqual(Array(16).fill(60));
    const stats = server.stats();
    expect(stats.maxRunning).toBeLessThanOrEqual(8);
    expect(stats.preemptions).toBeGreaterThan(0);
    expect(stats.answered).toBe(16);
    const metrics = await (await fetch(server.url.replace('/v1', '/metrics'))).text();
    expect(metric(metrics, 'vllm:num_preemptions_total')).toBe(stats.preemptions);
    expect(metric(metrics, 'vllm:generation_tokens_total')).toBe(stats.generatedTokens);
    expect(metric(metrics, 'vllm:num_requests_running')).toBe(0);
    expect(metric(metrics, 'vllm:kv_cache_usage_perc')).toBe(0);
  });

  it('never preempts with a cache that holds the whole batch', async () => {
    const server = await sim({ maxNumSeqs: 8, outputTokens: 60 });
    await Promise.all(Array.from({ length: 16 }, (_v, i) => chat(server.url, `prompt ${i}`)));
    expect(server.stats().preemptions).toBe(0);
  });

  it('serves n samples as n engine requests that share one prefill', async () => {
    const server = await sim({ maxNumSeqs: 16 });
    const text = 'The quick brown fox jumps over the lazy dog near the river bank.';
    const answer = await chat(server.url, text, { n: 4 });
    const choices = answer.body.choices!;
    expect(choices.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
    for (const choice of choices) {
      expect(choice.message?.content).toBe(completionText(text, 7, choice.index, 512).text);
      expect(choice.finish_reason).toBe('stop');
    }
    const stats = server.stats();
    expect(stats.submitted).toBe(4);
    expect(stats.nPerRequest).toEqual({ 4: 1 });
    expect(stats.maxRunning).toBe(4);
    const promptTokens = Math.ceil(Buffer.byteLength(text) / 4);
    expect(answer.body.usage?.prompt_tokens).toBe(promptTokens);
    expect(stats.promptTokens).toBe(promptTokens);
    const words = choices.map((choice) => choice.message!.content.split(' ').length);
    expect(answer.body.usage?.completion_tokens).toBe(words.reduce((a, b) => a + b, 0));
    expect(stats.generatedTokens).toBe(answer.body.usage?.completion_tokens);
  });

  it('answers the same bytes as the OpenAI test server, and cuts at max_tokens with finish_reason length', async () => {
    const server = await sim({});
    const reference = await startOpenAiServer();
    try {
      const body = {
        model: 'sim-model',
        prompt: 'Rephrase this document about rivers and boats.',
        seed: 3,
        n: 2,
      };
      const ours = await post(server.url, '/completions', { ...body, max_tokens: 512 });
      const theirs = await post(reference.url, '/completions', { ...body, max_tokens: 512 });
      expect(ours.body.choices?.map((choice) => choice.text)).toEqual(
        theirs.body.choices?.map((choice) => choice.text),
      );
      const cut = await post(server.url, '/completions', { ...body, max_tokens: 5 });
      expect(cut.body.choices?.map((choice) => choice.finish_reason)).toEqual(['length', 'length']);
      expect(cut.body.choices?.[0]?.text?.split(' ')).toHaveLength(5);
      expect(cut.body.usage?.completion_tokens).toBe(10);
    } finally {
      await reference.close();
    }
  });

  it('draws output lengths from a range, reproducibly', async () => {
    const server = await sim({ outputTokens: [100, 300] });
    const first = await chat(server.url, 'same prompt', { n: 3 });
    const second = await chat(server.url, 'same prompt', { n: 3 });
    const tokens = first.body.usage!.completion_tokens;
    expect(tokens).toBe(second.body.usage!.completion_tokens);
    expect(tokens).toBeGreaterThanOrEqual(300);
    expect(tokens).toBeLessThanOrEqual(900);
  });
});

describe('vllm-sim routes', () => {
  it('lists the model with max_model_len, answers /health, and serves vLLM metrics (or 404 without)', async () => {
    const server = await sim({ model: 'llama-sim', maxModelLen: 8192 });
    const root = server.url.replace('/v1', '');
    const models = (await (await fetch(`${server.url}/models`)).json()) as {
      data: Array<{ id: string; max_model_len: number }>;
    };
    expect(models.data).toMatchObject([{ id: 'llama-sim', max_model_len: 8192 }]);
    expect((await fetch(`${root}/health`)).status).toBe(200);
    const response = await fetch(`${root}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    for (const name of [
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
      'vllm:num_preemptions_total',
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
    ]) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toMatch(new RegExp(`# TYPE ${name} (gauge|counter)\\n`));
      expect(text).toContain(`${name}{engine="0",model_name="llama-sim"} 0.0\n`);
    }
    const bare = await sim({ metrics: false });
    expect((await fetch(bare.url.replace('/v1', '/metrics'))).status).toBe(404);
  });

  it('refuses a prompt over max_model_len with vLLM message', async () => {
    const server = await sim({ maxModelLen: 100 });
    const answer = await chat(server.url, 'x'.repeat(400), { max_tokens: 10 });
    expect(answer.status).toBe(400);
    expect(answer.body.message).toBe(
      "This model's maximum context length is 100 tokens. However, you requested 110 tokens (100 in the " +
        'messages, 10 in the completion). Please reduce the length of the messages or completion.',
    );
    expect(server.stats().overContext).toBe(1);
    expect(server.stats().submitted).toBe(0);
  });

  it('exposes its stats as JSON at /sim/stats and clears them at /sim/reset', async () => {
    const server = await sim({ outputTokens: 3 });
    await chat(server.url, 'hello');
    const root = server.url.replace('/v1', '');
    const stats = (await (await fetch(`${root}/sim/stats`)).json()) as {
      answered: number;
      generatedTokens: number;
      peakTokensPerS: number;
    };
    expect(stats).toMatchObject({
      answered: 1,
      generatedTokens: 3,
      peakTokensPerS: server.peakTokensPerS(),
      queueWaitSteps: { count: 1, p50: 0 },
    });
    const lists = (await (await fetch(`${root}/sim/stats?lists=1`)).json()) as { queueWaitSteps: number[] };
    expect(lists.queueWaitSteps).toEqual([0]);
    await fetch(`${root}/sim/reset`, { method: 'POST' });
    expect(server.stats().answered).toBe(0);
  });

  it('runs as its own process and prints its URL', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/vllm-sim-main.ts'), '--max-num-seqs', '2'],
      { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const { url } = JSON.parse((await lines.next()).value as string) as { url: string };
    const answer = await chat(url, 'from another process', { n: 2 });
    expect(answer.body.choices).toHaveLength(2);
    child.kill('SIGTERM');
    const last = JSON.parse((await lines.next()).value as string) as { answered: number };
    expect(last.answered).toBe(1);
  });
});

describe('vllm-sim hosted mode', () => {
  it('answers 429 with retry-after and OpenAI error JSON over rpm, with x-ratelimit headers on every answer', async () => {
    const server = await sim({ timeScale: 1, outputTokens: 1, hosted: { rpm: 3, tpm: 100_000 } });
    const answers: Answer[] = [];
    for (let i = 0; i < 4; i += 1) answers.push(await chat(server.url, `request ${i}`, { max_tokens: 10 }));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(answers.map((answer) => answer.headers.get('x-ratelimit-remaining-requests'))).toEqual([
      '2',
      '1',
      '0',
      '0',
    ]);
    for (const answer of answers) {
      expect(answer.headers.get('x-ratelimit-limit-requests')).toBe('3');
      expect(answer.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
      expect(answer.headers.get('x-ratelimit-reset-requests')).toMatch(GO_DURATION);
      expect(answer.headers.get('x-ratelimit-reset-tokens')).toMatch(GO_DURATION);
    }
    const refused = answers[3]!;
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(refused.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
    expect(refused.body.error?.message).toMatch(
      /^Rate limit reached for sim-model .* on requests per min \(RPM\): Limit 3, Used 3, Requested 1\. Please try again in \d/,
    );
    expect(server.stats().rateLimited).toBe(1);
    expect(server.stats().submitted).toBe(3);
  });

  it('counts tokens as OpenAI does (prompt estimate + max_tokens x n) against tpm', async () => {
    const server = await sim({ timeScale: 1, outputTokens: 1, hosted: { tpm: 1000 } });
    // 'abcd' is 1 prompt token: 1 + 200 x 2 = 401 tokens per request.
    const first = await chat(server.url, 'abcd', { max_tokens: 200, n: 2 });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe('599');
    expect(first.headers.get('x-ratelimit-limit-requests')).toBeNull();
    expect((await chat(server.url, 'abcd', { max_tokens: 200, n: 2 })).status).toBe(200);
    const refused = await chat(server.url, 'abcd', { max_tokens: 200, n: 2 });
    expect(refused.status).toBe(429);
    expect(refused.body.error?.type).toBe('tokens');
    expect(refused.headers.get('x-ratelimit-remaining-tokens')).toBe('198');
    expect(server.stats().rateTokens).toBe(802);
  });

  it('admits again once the retry-after it gave has passed (a window of windowMs)', async () => {
    const server = await sim({ outputTokens: 1, hosted: { rpm: 2, windowMs: 300 } });
    const statuses: number[] = [];
    for (let i = 0; i < 2; i += 1) statuses.push((await chat(server.url, `r${i}`)).status);
    const refused = await chat(server.url, 'r2');
    expect([...statuses, refused.status]).toEqual([200, 200, 429]);
    const waitMs = Number(refused.headers.get('retry-after-ms'));
    expect(waitMs).toBeLessThanOrEqual(300);
    await new Promise((resolve) => setTimeout(resolve, waitMs + 5));
    expect((await chat(server.url, 'r3')).status).toBe(200);
  });

  it("writes durations in Go's format as OpenAI does", () => {
    expect(formatDuration(20)).toBe('20ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(3_600_000)).toBe('1h0m0s');
    expect(formatDuration(0)).toBe('0s');
  });
});
