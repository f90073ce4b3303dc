// A simulated vLLM server on 127.0.0.1 for tests and benchmarks: OpenAI-compatible completions answered by a
// continuous-batching engine (vllm-sim-engine.ts), vLLM's /metrics and /v1/models, and a hosted mode with rate limits.
//
//   const sim = await startVllmSim({ maxNumSeqs: 16, timeScale: 0.01 });   // sim.url = http://127.0.0.1:PORT/v1
//   POST /v1/completions, /v1/chat/completions   OpenAI shapes, not streamed; `n` samples = n engine requests
//       sharing the prompt (prefilled once); answers are test/helpers/openai-answers.ts's completionText
//       (magaPairsAnswer in JSON mode), so output bytes equal those against openai-server.ts.
//       Over max_model_len: 400 with vLLM's message. Hosted mode: 429 + retry-after over rpm/tpm.
//   GET /v1/models (with max_model_len), GET /health, GET /metrics (Prometheus text, vLLM's names; 404 with
//       metrics: false), GET /sim/stats (VllmSimStats as JSON, for a sim in another process; its lists summarized
//       as {count, mean, p50, p90, max} unless ?lists=1; `workloadPeakTokensPerS`: the peak for the mean sizes
//       seen since the last reset), POST /sim/reset (clears the counters).
// Token counts are estimates: a prompt is ceil(UTF-8 bytes / 4) tokens (all messages' contents); an answer has
// `outputTokens` tokens (default: the answer's words), its text stays the deterministic one.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { completionText, countWords, hash32, magaPairsAnswer, random } from './openai-answers.js';
import type { ChatBody } from './openai-server.js';
import { type EngineStats, emptyEngineStats, VllmEngine } from './vllm-sim-engine.js';
import { type HostedLimits, HostedRateLimiter } from './vllm-sim-ratelimit.js';

/** What `outputTokens` as a function is given: the request and which sample of it. */
export interface SimSample {
  body: ChatBody;
  promptText: string;
  promptTokens: number;
  seed: number;
  choice: number;
  /** The deterministic answer's word count (the default output length). */
  naturalTokens: number;
}

export interface VllmSimOptions {
  /** The served model's name (/v1/models, /metrics' model_name). Default 'sim-model'. */
  model: string;
  /** Context size: prompt + max_tokens above it is a 400. Default 16384; at most kvCacheTokens (as vLLM checks). */
  maxModelLen: number;
  /** The batch limit (vLLM's --max-num-seqs). Default 256. */
  maxNumSeqs: number;
  /** KV cache size in tokens: prompts (once per request) + generated tokens of all running samples. Default 500,000. */
  kvCacheTokens: number;
  /** Prefill speed: a step that admits sequences takes their prompt tokens / this longer. Default 50,000. */
  prefillTokensPerS: number;
  /** A decode step takes decodeBaseMs + decodePerSeqMs x batch (simulated ms). Defaults 10 and 0.05. */
  decodeBaseMs: number;
  decodePerSeqMs: number;
  /**
   * Tokens each sample generates (always at most max_tokens, then finish_reason 'length'): a number, a range
   * [min, max] drawn per sample from its prompt, seed and index, or a function. Default: the answer's words.
   */
  outputTokens?: number | [number, number] | ((sample: SimSample) => number);
  /** Every simulated time (steps, prefill, the rate-limit minute) times this, e.g. 0.01 for fast tests. Default 1. */
  timeScale: number;
  /** Hosted-API mode: requests / tokens per window (a simulated minute: 60 s x timeScale), 429 over them. */
  hosted?: HostedLimits;
  /** Serve /metrics (default true); false: 404 there, like a server without metrics. */
  metrics: boolean;
  /** Port to listen on (default: any free one). */
  port: number;
}

export interface VllmSimStats extends EngineStats {
  /** Completion POSTs received, answered 200, refused for the context length, refused 429 (hosted mode). */
  received: number;
  answered: number;
  overContext: number;
  rateLimited: number;
  /** Hosted mode: the tokens (OpenAI's count: prompt estimate + max_tokens x n) of the requests admitted. */
  rateTokens: number;
  /** Requests whose client went away before the answer (their samples were aborted). */
  aborted: number;
  /** How many requests asked for each `n` (keys are n). */
  nPerRequest: Record<string, number>;
  /** Gauges now: running, waiting, KV cache use 0..1. */
  running: number;
  waiting: number;
  kvCacheUsage: number;
}

export interface VllmSim {
  /** Base URL to pass as --llm: http://127.0.0.1:PORT/v1 */
  url: string;
  options: VllmSimOptions;
  stats(): VllmSimStats;
  /** Clears the counters (not the requests in progress). */
  resetStats(): void;
  /** Theoretical peak generated tokens/s in real (scaled) seconds: see peakTokensPerS below. */
  peakTokensPerS(workload?: Workload): number;
  close(): Promise<void>;
}

/** A workload's mean sizes per engine request (sample): the prompt is shared by a request's n samples. */
export interface Workload {
  promptTokens: number;
  outputTokens: number;
  n?: number;
}

export const DEFAULT_SIM_OPTIONS: VllmSimOptions = {
  model: 'sim-model',
  maxModelLen: 16_384,
  maxNumSeqs: 256,
  kvCacheTokens: 500_000,
  prefillTokensPerS: 50_000,
  decodeBaseMs: 10,
  decodePerSeqMs: 0.05,
  timeScale: 1,
  metrics: true,
  port: 0,
};

/**
 * Generated tokens/s at the largest batch the parameters allow, in real seconds. Without a workload: decode only,
 * at maxNumSeqs. With one: the batch also bounded by the KV cache (a sample holds on average its prompt share and
 * half its output) and each output token also paying its share of the prompt's prefill.
 */
export function peakTokensPerS(options: VllmSimOptions, workload?: Workload): number {
  const { maxNumSeqs, kvCacheTokens, decodeBaseMs, decodePerSeqMs, prefillTokensPerS, timeScale } = options;
  let batch = maxNumSeqs;
  let prefillMsPerToken = 0;
  if (workload) {
    const promptShare = workload.promptTokens / (workload.n ?? 1);
    batch = Math.max(
      1,
      Math.min(maxNumSeqs, Math.floor(kvCacheTokens / (promptShare + workload.outputTokens / 2))),
    );
    prefillMsPerToken = (promptShare * 1000) / prefillTokensPerS / workload.outputTokens;
  }
  const msPerToken = (decodeBaseMs + decodePerSeqMs * batch) / batch + prefillMsPerToken;
  return 1000 / (msPerToken * timeScale);
}

/** The mean sizes of the samples finished since the counters were cleared; undefined before the first. */
export function observedWorkload(stats: VllmSimStats): Workload | undefined {
  if (stats.finished === 0 || stats.prefilledRequests === 0) return undefined;
  return {
    promptTokens: stats.promptTokens / stats.prefilledRequests,
    outputTokens: stats.generatedTokens / stats.finished,
    n: stats.submitted / Math.max(1, stats.received - stats.rateLimited - stats.overContext),
  };
}

/** The prompt's token estimate: ceil(UTF-8 bytes / 4) over the prompt or all messages' contents. */
export function promptTokenEstimate(body: ChatBody): number {
  const texts = body.messages ? body.messages.map((message) => message.content ?? '') : [body.prompt ?? ''];
  return texts.reduce((sum, text) => sum + Math.ceil(Buffer.byteLength(text) / 4), 0);
}

export interface ListSummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  max: number;
}

/** Count, mean, median, 90th percentile and maximum of a list (zeros when empty). */
export function summarize(values: number[]): ListSummary {
  if (values.length === 0) return { count: 0, mean: 0, p50: 0, p90: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (share: number) => sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!;
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { count: sorted.length, mean, p50: at(0.5), p90: at(0.9), max: sorted.at(-1)! };
}

function outputTarget(options: VllmSimOptions, sample: SimSample): number {
  const { outputTokens } = options;
  if (outputTokens === undefined) return sample.naturalTokens;
  if (typeof outputTokens === 'number') return outputTokens;
  if (typeof outputTokens === 'function') return outputTokens(sample);
  const [min, max] = outputTokens;
  const draw = random(hash32(`tokens\u0000${sample.promptText}\u0000${sample.seed}\u0000${sample.choice}`))();
  return min + Math.floor(draw * (max - min + 1));
}

function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
) {
  const body = JSON.stringify(value);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  response.end(body);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/** vLLM's /metrics families this server writes: name, type, help (as vLLM words them). */
const METRICS: ReadonlyArray<[string, 'gauge' | 'counter', string]> = [
  ['vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.'],
  ['vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.'],
  ['vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.'],
  ['vllm:num_preemptions_total', 'counter', 'Cumulative number of preemption from the engine.'],
  ['vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.'],
  ['vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.'],
];

/** A float as Python's prometheus_client writes it ("3.0", "0.25"). */
function promFloat(value: number): string {
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

function metricsText(stats: VllmSimStats, model: string): string {
  const values: Record<string, number> = {
    'vllm:num_requests_running': stats.running,
    'vllm:num_requests_waiting': stats.waiting,
    'vllm:kv_cache_usage_perc': stats.kvCacheUsage,
    'vllm:num_preemptions_total': stats.preemptions,
    'vllm:prompt_tokens_total': stats.promptTokens,
    'vllm:generation_tokens_total': stats.generatedTokens,
  };
  const labels = `{engine="0",model_name="${model}"}`;
  return METRICS.map(
    ([name, type, help]) =>
      `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name}${labels} ${promFloat(values[name]!)}\n`,
  ).join('');
}

interface Counters {
  received: number;
  answered: number;
  overContext: number;
  rateLimited: number;
  rateTokens: number;
  aborted: number;
  nPerRequest: Record<string, number>;
}

function emptyCounters(): Counters {
  return {
    received: 0,
    answered: 0,
    overContext: 0,
    rateLimited: 0,
    rateTokens: 0,
    aborted: 0,
    nPerRequest: {},
  };
}

/** The completion answer: the deterministic texts of `targets.length` samples cut to their token counts. */
function answerBody(
  chat: boolean,
  body: ChatBody,
  model: string,
  promptText: string,
  promptTokens: number,
  targets: number[],
  json: boolean,
): Record<string, unknown> {
  const seed = body.seed ?? 0;
  const choices = targets.map((tokens, choice) => {
    const text = json
      ? JSON.stringify(magaPairsAnswer(promptText, seed))
      : completionText(promptText, seed, choice, tokens).text;
    const finishReason = body.max_tokens !== undefined && tokens >= body.max_tokens ? 'length' : 'stop';
    return chat
      ? { index: choice, message: { role: 'assistant', content: text }, finish_reason: finishReason }
      : { index: choice, text, finish_reason: finishReason };
  });
  const completionTokens = targets.reduce((sum, tokens) => sum + tokens, 0);
  return {
    id: `cmpl-sim-${seed}`,
    object: chat ? 'chat.completion' : 'text_completion',
    created: 0,
    model,
    choices,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  };
}

export async function startVllmSim(overrides: Partial<VllmSimOptions> = {}): Promise<VllmSim> {
  const options: VllmSimOptions = { ...DEFAULT_SIM_OPTIONS, ...overrides };
  if (options.maxModelLen > options.kvCacheTokens) {
    throw new Error(
      `vllm-sim: maxModelLen ${options.maxModelLen} is larger than the KV cache (${options.kvCacheTokens} tokens); ` +
        'vLLM refuses to start so: lower maxModelLen or raise kvCacheTokens',
    );
  }
  const engine = new VllmEngine(options);
  let counters = emptyCounters();
  const limiter = options.hosted
    ? new HostedRateLimiter(
        options.hosted,
        options.hosted.windowMs ?? 60_000 * options.timeScale,
        options.model,
      )
    : undefined;

  const stats = (): VllmSimStats => ({
    ...engine.stats,
    ...counters,
    running: engine.runningCount,
    waiting: engine.waitingCount,
    kvCacheUsage: engine.kvUsage,
  });

  async function complete(request: IncomingMessage, response: ServerResponse, chat: boolean): Promise<void> {
    counters.received += 1;
    let body: ChatBody;
    try {
      body = JSON.parse(await readBody(request)) as ChatBody;
    } catch {
      sendJson(response, 400, { object: 'error', message: 'the request body is not JSON', code: 400 });
      return;
    }
    const n = body.n ?? 1;
    counters.nPerRequest[n] = (counters.nPerRequest[n] ?? 0) + 1;
    const promptTokens = promptTokenEstimate(body);
    const maxTokens = body.max_tokens ?? options.maxModelLen - promptTokens;
    if (promptTokens + maxTokens > options.maxModelLen) {
      counters.overContext += 1;
      const message =
        `This model's maximum context length is ${options.maxModelLen} tokens. However, you requested ` +
        `${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). ` +
        'Please reduce the length of the messages or completion.';
      sendJson(response, 400, { object: 'error', message, type: 'BadRequestError', param: null, code: 400 });
      return;
    }
    let headers: Record<string, string> = {};
    if (limiter) {
      const rateTokens = promptTokens + (body.max_tokens ?? 0) * n;
      const decision = limiter.request(rateTokens);
      headers = decision.headers;
      if (!decision.allowed) {
        counters.rateLimited += 1;
        const error = {
          message: decision.message,
          type: decision.type,
          param: null,
          code: 'rate_limit_exceeded',
        };
        sendJson(response, 429, { error }, headers);
        return;
      }
      counters.rateTokens += rateTokens;
    }
    const promptText =
      body.messages?.filter((message) => message.role === 'user').at(-1)?.content ?? body.prompt ?? '';
    const seed = body.seed ?? 0;
    const json = chat && body.response_format?.type === 'json_object';
    const targets = Array.from({ length: n }, (_v, choice) => {
      const naturalTokens = json
        ? countWords(JSON.stringify(magaPairsAnswer(promptText, seed)))
        : completionText(promptText, seed, choice).tokens;
      const sample = { body, promptText, promptTokens, seed, choice, naturalTokens };
      return Math.max(1, Math.min(maxTokens, Math.round(outputTarget(options, sample))));
    });
    let answered = false;
    const abort = engine.submit({
      promptTokens,
      outputTokens: targets,
      onDone: () => {
        answered = true;
        counters.answered += 1;
        sendJson(
          response,
          200,
          answerBody(chat, body, options.model, promptText, promptTokens, targets, json),
          headers,
        );
      },
    });
    response.on('close', () => {
      if (answered) return;
      counters.aborted += 1;
      abort();
    });
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '').split('?')[0]!;
    const route = `${request.method} ${path}`;
    if (route === 'POST /v1/completions') return complete(request, response, false);
    if (route === 'POST /v1/chat/completions') return complete(request, response, true);
    if (route === 'GET /health') {
      response.writeHead(200, { 'content-length': 0 });
      response.end();
      return;
    }
    if (route === 'GET /v1/models') {
      const model = { id: options.model, object: 'model', created: 0, owned_by: 'vllm', root: options.model };
      sendJson(response, 200, { object: 'list', data: [{ ...model, max_model_len: options.maxModelLen }] });
      return;
    }
    if (route === 'GET /metrics' && options.metrics) {
      const text = metricsText(stats(), options.model);
      response.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      response.end(text);
      return;
    }
    if (route === 'GET /sim/stats') {
      const full = stats();
      const lists = new URL(request.url ?? '', 'http://sim').searchParams.get('lists') === '1';
      const summaries = lists
        ? {}
        : {
            queueWaitSteps: summarize(full.queueWaitSteps),
            queueWaitMs: summarize(full.queueWaitMs),
            waitingPerStep: summarize(full.waitingPerStep),
          };
      const workload = observedWorkload(full);
      sendJson(response, 200, {
        ...full,
        ...summaries,
        options,
        peakTokensPerS: peakTokensPerS(options),
        workload,
        workloadPeakTokensPerS: workload && peakTokensPerS(options, workload),
      });
      return;
    }
    if (route === 'POST /sim/reset') {
      resetStats();
      sendJson(response, 200, { reset: true });
      return;
    }
    sendJson(response, 404, { detail: 'Not Found' });
  }

  function resetStats(): void {
    engine.stats = emptyEngineStats();
    counters = emptyCounters();
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent)
        sendJson(response, 500, { object: 'error', message: String(error), code: 500 });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.maxConnections = 100_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    options,
    stats,
    resetStats,
    peakTokensPerS: (workload) => peakTokensPerS(options, workload),
    close() {
      engine.stop();
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
