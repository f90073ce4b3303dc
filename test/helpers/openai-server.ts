// An OpenAI-compatible LLM server on 127.0.0.1 (node:http) for tests and benchmarks: deterministic answers
// derived from each request, configurable latency, `n`, JSON mode, faults on demand and server-side counters.
//
// API (also used by the end-to-end tests of `megadocs run`):
//   const server = await startOpenAiServer({ latency, jsonMode, ignoreN, apiKey, maxPromptWords, models,
//     maxModelLen, port });
//   GET /v1/models                  with `models`: {data: [{id, max_model_len}]} as vLLM lists them
//   server.url                      base URL to pass as --llm, e.g. http://127.0.0.1:PORT/v1
//   POST /v1/chat/completions       {model, messages, n, max_tokens, seed, response_format?} -> n choices
//   POST /v1/completions            {model, prompt, n, max_tokens, seed} -> n choices (`text`)
//   Answers: completionText(promptText, seed, choice, maxTokens) -- starts with the marker `s<seed>c<choice>`,
//     then words picked at seeded positions of the last user message, 40..99 in all; `length` when max_tokens
//     cuts it. With response_format json_object: magaPairsAnswer(promptText, seed), the 5 genre/audience pairs.
//     usage: prompt_tokens = words of all messages, completion_tokens = words of all choices.
//   latency: ms (fixed), {uniform: [min, max]}, {lognormal: {medianMs, sigma}}, or (request) => ms; the
//     delay is deterministic per request (seeded by its body) and comes before the headers, like a
//     non-streamed completion. server.setLatency(spec) changes it on the fly.
//   answerRepeat: K answers each plain-text choice as its text K times (large answers for benchmarks).
//   randomFaults: {rate, fault, seed?}: each try of a request gets `fault` with probability `rate`, drawn from
//     (seed, the request's seed, which try of it this is), so the same tries fail whatever the arrival order.
//   server.addFaults([...], match?): the next matching requests (one fault each, in order) get:
//     {kind: 'status', status, retryAfter?, message?}   e.g. 429 + Retry-After, 503, 400
//     {kind: 'reset'}            socket destroyed without an answer
//     {kind: 'slow-headers', delayMs}   extra wait before the (normal) answer
//     {kind: 'truncated'}        Content-Length of the full body, half of it sent, socket closed
//     {kind: 'invalid-json'}     200 with a body that is not JSON
//     {kind: 'length'}           normal answer with finish_reason `length`
//     {kind: 'invalid-content'}  normal envelope, but the message content is not the requested JSON
//   server.stats: received, completed (full answers sent), inFlight, maxInFlight, byPath, faults,
//     receivedBySeed / completedBySeed (Map seed -> count); server.log: one entry per request
//     {seed, path, n, arrivedAt, respondedAt, status, fault} (times from performance.now(), ms).
//   server.reset() clears counters and log; await server.close().
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { completionText, countWords, hash32, magaPairsAnswer, random } from './openai-answers.js';

export { completionText, magaPairsAnswer };

export type LatencySpec =
  | number
  | { uniform: [number, number] }
  | { lognormal: { medianMs: number; sigma: number } }
  | ((request: ReceivedRequest) => number);

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; message?: string }
  | { kind: 'reset' }
  | { kind: 'slow-headers'; delayMs: number }
  | { kind: 'truncated' }
  | { kind: 'invalid-json' }
  | { kind: 'length' }
  | { kind: 'invalid-content' };

export interface ChatBody {
  model?: string;
  messages?: Array<{ role: string; content: string }>;
  prompt?: string;
  n?: number;
  max_tokens?: number;
  seed?: number;
  temperature?: number;
  response_format?: { type?: string };
}

export interface ReceivedRequest {
  path: string;
  body: ChatBody;
  seed: number;
  /** The text the answer is drawn from: the last user message, or the prompt. */
  promptText: string;
  authorization?: string;
}

export interface ServerOptions {
  latency?: LatencySpec;
  /** Honour response_format json_object (default true); false answers in plain text. */
  jsonMode?: boolean;
  /** Answer one choice whatever `n` is (a server without n support). */
  ignoreN?: boolean;
  /** Require `Authorization: Bearer <apiKey>` (401 otherwise). */
  apiKey?: string;
  /** 400 "maximum context length" when the prompt has more words than this. */
  maxPromptWords?: number;
  /** What GET /v1/models lists, as vLLM does (`{data: [{id, max_model_len}]}`); without it, that route is a 404. */
  models?: Array<{ id: string; maxModelLen?: number }>;
  /**
   * vLLM's context check: 400 with its wording when the prompt's words (all messages) plus max_tokens exceed it;
   * counted in stats.overContext.
   */
  maxModelLen?: number;
  /** Port to listen on (default: any free one). */
  port?: number;
  /** A share of all tries answered with a fault, reproducibly (see the header). */
  randomFaults?: RandomFaults;
  /** Each plain-text answer is its text this many times, space-joined (benchmarks of large answers; default 1). */
  answerRepeat?: number;
}

export interface RandomFaults {
  /** Probability that a try gets the fault, 0 to 1. */
  rate: number;
  fault: Fault;
  seed?: number;
}

/** Whether try number `tries` of the request with this seed draws the random fault. */
function drawsFault(faults: RandomFaults, requestSeed: number, tries: number): boolean {
  return random(hash32(`fault\u0000${faults.seed ?? 0}\u0000${requestSeed}\u0000${tries}`))() < faults.rate;
}

export interface LogEntry {
  seed: number;
  path: string;
  n: number;
  arrivedAt: number;
  respondedAt?: number;
  status?: number;
  fault?: Fault['kind'];
}

export interface ServerStats {
  received: number;
  completed: number;
  inFlight: number;
  maxInFlight: number;
  byPath: Record<string, number>;
  faults: number;
  receivedBySeed: Map<number, number>;
  completedBySeed: Map<number, number>;
  /** Requests refused for exceeding maxModelLen. */
  overContext: number;
  /** GET /v1/models answered. */
  modelListings: number;
}

export interface OpenAiTestServer {
  url: string;
  port: number;
  stats: ServerStats;
  log: LogEntry[];
  addFaults(faults: Fault[], match?: (request: ReceivedRequest) => boolean): void;
  setLatency(latency: LatencySpec): void;
  reset(): void;
  close(): Promise<void>;
}

function latencyOf(spec: LatencySpec, request: ReceivedRequest, bodyText: string): number {
  if (typeof spec === 'number') return spec;
  if (typeof spec === 'function') return spec(request);
  const next = random(hash32(`latency\u0000${bodyText}`));
  if ('uniform' in spec) return spec.uniform[0] + next() * (spec.uniform[1] - spec.uniform[0]);
  const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return spec.lognormal.medianMs * Math.exp(spec.lognormal.sigma * normal);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  response.end(body);
}

function answerBody(
  received: ReceivedRequest,
  options: ServerOptions,
  fault?: Fault,
): Record<string, unknown> {
  const { body, path, promptText, seed } = received;
  const chat = path.endsWith('/chat/completions');
  const n = options.ignoreN ? 1 : (body.n ?? 1);
  const json = chat && options.jsonMode !== false && body.response_format?.type === 'json_object';
  const choices = [];
  let completionTokens = 0;
  for (let choice = 0; choice < n; choice += 1) {
    let text: string;
    let finishReason: string;
    if (json) {
      text =
        fault?.kind === 'invalid-content'
          ? 'Sure! Here are five ideas.'
          : JSON.stringify(magaPairsAnswer(promptText, seed));
      finishReason = 'stop';
      completionTokens += countWords(text);
    } else {
      const answer = completionText(promptText, seed, choice, body.max_tokens);
      const repeat = options.answerRepeat ?? 1;
      text = repeat === 1 ? answer.text : Array(repeat).fill(answer.text).join(' ');
      finishReason = answer.finishReason;
      completionTokens += answer.tokens * repeat;
    }
    if (fault?.kind === 'length') finishReason = 'length';
    choices.push(
      chat
        ? { index: choice, message: { role: 'assistant', content: text }, finish_reason: finishReason }
        : { index: choice, text, finish_reason: finishReason },
    );
  }
  const promptTokens = chat
    ? (body.messages ?? []).reduce((sum, message) => sum + countWords(message.content), 0)
    : countWords(body.prompt ?? '');
  return {
    id: `cmpl-${seed}`,
    object: chat ? 'chat.completion' : 'text_completion',
    model: body.model ?? 'test-model',
    choices,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  };
}

function emptyStats(): ServerStats {
  return {
    received: 0,
    completed: 0,
    inFlight: 0,
    maxInFlight: 0,
    byPath: {},
    faults: 0,
    receivedBySeed: new Map(),
    completedBySeed: new Map(),
    overContext: 0,
    modelListings: 0,
  };
}

export async function startOpenAiServer(options: ServerOptions = {}): Promise<OpenAiTestServer> {
  let latency: LatencySpec = options.latency ?? 0;
  let faults: Array<{ fault: Fault; match?: (request: ReceivedRequest) => boolean }> = [];
  const state = { stats: emptyStats(), log: [] as LogEntry[] };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { stats } = state;
    const path = (request.url ?? '').split('?')[0]!;
    const bodyText = await readBody(request);
    if (request.method === 'GET' && path === '/v1/models' && options.models) {
      stats.modelListings += 1;
      const data = options.models.map(({ id, maxModelLen }) => ({
        id,
        object: 'model',
        owned_by: 'vllm',
        ...(maxModelLen !== undefined && { max_model_len: maxModelLen }),
      }));
      sendJson(response, 200, { object: 'list', data });
      return;
    }
    if (request.method !== 'POST' || !/^\/v1\/(chat\/)?completions$/.test(path)) {
      sendJson(response, 404, { error: { message: `no route ${request.method} ${path}` } });
      return;
    }
    stats.received += 1;
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    let finished = false;
    const entry: LogEntry = { seed: -1, path, n: 1, arrivedAt: performance.now() };
    state.log.push(entry);
    const done = (status?: number) => {
      if (finished) return;
      finished = true;
      stats.inFlight -= 1;
      entry.respondedAt = performance.now();
      entry.status = status;
    };
    response.on('close', () => done(entry.status));
    let body: ChatBody;
    try {
      body = JSON.parse(bodyText) as ChatBody;
    } catch {
      sendJson(response, 400, { error: { message: 'the request body is not JSON' } });
      done(400);
      return;
    }
    const seed = body.seed ?? 0;
    const lastUser = body.messages?.filter((message) => message.role === 'user').at(-1)?.content;
    const received: ReceivedRequest = {
      path,
      body,
      seed,
      promptText: lastUser ?? body.prompt ?? '',
      authorization: request.headers.authorization,
    };
    entry.seed = seed;
    entry.n = body.n ?? 1;
    const tries = (stats.receivedBySeed.get(seed) ?? 0) + 1;
    stats.receivedBySeed.set(seed, tries);
    const faultAt = faults.findIndex((candidate) => !candidate.match || candidate.match(received));
    let fault = faultAt >= 0 ? faults[faultAt]!.fault : undefined;
    if (faultAt >= 0) faults = faults.filter((_, position) => position !== faultAt);
    else if (options.randomFaults && drawsFault(options.randomFaults, seed, tries)) {
      fault = options.randomFaults.fault;
    }
    if (fault) {
      stats.faults += 1;
      entry.fault = fault.kind;
    }
    const delay =
      latencyOf(latency, received, bodyText) + (fault?.kind === 'slow-headers' ? fault.delayMs : 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (options.apiKey !== undefined && received.authorization !== `Bearer ${options.apiKey}`) {
      sendJson(response, 401, { error: { message: 'invalid API key' } });
      done(401);
      return;
    }
    if (fault?.kind === 'reset') {
      request.socket.destroy();
      done();
      return;
    }
    if (fault?.kind === 'status') {
      const headers: Record<string, string> =
        fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter };
      sendJson(
        response,
        fault.status,
        { error: { message: fault.message ?? `injected ${fault.status}` } },
        headers,
      );
      done(fault.status);
      return;
    }
    if (fault?.kind === 'invalid-json') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"choices": [ this is not JSON');
      done(200);
      return;
    }
    if (options.maxPromptWords !== undefined && countWords(received.promptText) > options.maxPromptWords) {
      sendJson(response, 400, {
        error: { message: `This model's maximum context length is ${options.maxPromptWords} tokens` },
      });
      done(400);
      return;
    }
    if (options.maxModelLen !== undefined) {
      const promptTokens = body.messages
        ? body.messages.reduce((sum, message) => sum + countWords(message.content), 0)
        : countWords(body.prompt ?? '');
      const completionTokens = body.max_tokens ?? 0;
      if (promptTokens + completionTokens > options.maxModelLen) {
        stats.overContext += 1;
        sendJson(response, 400, {
          error: {
            message: `This model's maximum context length is ${options.maxModelLen} tokens. However, you requested ${promptTokens + completionTokens} tokens (${promptTokens} in the messages, ${completionTokens} in the completion). Please reduce the length of the messages or completion.`,
          },
        });
        done(400);
        return;
      }
    }
    const answer = JSON.stringify(answerBody(received, options, fault));
    if (fault?.kind === 'truncated') {
      const bytes = Buffer.from(answer);
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
      response.write(bytes.subarray(0, bytes.length >> 1), () => request.socket.destroy());
      done(200);
      return;
    }
    response.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(answer),
    });
    response.end(answer);
    stats.completed += 1;
    stats.completedBySeed.set(seed, (stats.completedBySeed.get(seed) ?? 0) + 1);
    done(200);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, { error: { message: String(error) } });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    get stats() {
      return state.stats;
    },
    get log() {
      return state.log;
    },
    addFaults(list, match) {
      faults.push(...list.map((fault) => ({ fault, match })));
    },
    setLatency(spec) {
      latency = spec;
    },
    reset() {
      state.stats = emptyStats();
      state.log = [];
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
