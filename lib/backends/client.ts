// One OpenAI-compatible endpoint over an undici Pool: builds the request body, sends one attempt and sorts
// every outcome into a result, a transient error (retry), a rejection or a fatal error; probes whether it answers.
import { type Dispatcher, Pool } from 'undici';
import { MegadocsError, messageOf } from '../errors.js';
import { parseRetryAfter, TransientError } from '../retry.js';
import { type CompletionRequest, type CompletionResult, RequestFailedError } from './backend.js';
import { type RateLimitState, readRateLimitHeaders } from './ratelimit-headers.js';

export type ApiKind = 'chat' | 'completions';

export interface EndpointOptions {
  /** Base URL such as `http://host:8000/v1`. */
  baseUrl: string;
  api: ApiKind;
  model: string;
  apiKey?: string;
  /** Sockets this endpoint may open (at least the requests it may get at once). */
  connections: number;
  /** Headers and body timeout; a non-streamed completion sends headers only when it is done. */
  timeoutMs: number;
  /** Told the x-ratelimit headers of every answer that has them (hosted APIs). */
  onRateLimit?: (state: RateLimitState) => void;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection_refused',
  EHOSTUNREACH: 'host_unreachable',
  ENETUNREACH: 'host_unreachable',
  ENOTFOUND: 'host_not_found',
  EAI_AGAIN: 'host_not_found',
  UND_ERR_CONNECT_TIMEOUT: 'connect_timeout',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  UND_ERR_SOCKET: 'connection_reset',
  UND_ERR_CLOSED: 'connection_reset',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  ETIMEDOUT: 'timeout',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'truncated_body',
};

/** Failures that mean no connection was made: nothing listens there (yet), or the host cannot be reached. */
const UNREACHABLE_REASONS = new Set([
  'connection_refused',
  'host_unreachable',
  'host_not_found',
  'connect_timeout',
]);

/** The attempt found no server to talk to (as opposed to a server that answered badly or broke off). */
export function isUnreachable(error: TransientError): boolean {
  return UNREACHABLE_REASONS.has(error.reason);
}

/** The connection broke before the answer was whole (the server may have gone: a probe tells). */
export function isConnectionLoss(error: TransientError): boolean {
  return error.reason === 'connection_reset' || error.reason === 'truncated_body';
}

/** What a probe found: the server answers, or why it does not (yet). */
export type ProbeOutcome = { answers: true } | { answers: false; reason: string };

/** A model `GET {base}/models` lists: its name and, from vLLM (and SGLang), its context size in tokens. */
export interface ServedModel {
  id: string;
  maxModelLen?: number;
}

/** The models of a `/models` answer (`{data: [{id, max_model_len?}]}`); undefined when it is not such a list. */
function servedModels(text: string): ServedModel[] | undefined {
  try {
    const body = JSON.parse(text) as { data?: Array<{ id?: unknown; max_model_len?: unknown }> };
    if (!Array.isArray(body.data)) return undefined;
    return body.data
      .filter((entry) => typeof entry?.id === 'string')
      .map((entry) => ({
        id: entry.id as string,
        ...(typeof entry.max_model_len === 'number' && { maxModelLen: entry.max_model_len }),
      }));
  } catch {
    return undefined;
  }
}

/** A probe's GET waits this long at most for the answer (the connection itself: connectTimeout). */
const PROBE_TIMEOUT_MS = 10_000;

/** The JSON body of a request in the OpenAI wire format. */
function requestBody(api: ApiKind, model: string, request: CompletionRequest): Record<string, unknown> {
  const sampling = {
    n: request.n,
    temperature: request.temperature,
    top_p: request.topP,
    max_tokens: request.maxTokens,
    seed: request.seed,
  };
  const form = api === 'chat' ? request.messages : request.prompt;
  if (form === undefined) {
    throw new MegadocsError('LLM', `the request has no ${api === 'chat' ? 'messages' : 'prompt'}`, {
      where: request.label,
      hint: 'Render prompts in the form the backend declares (LlmBackend.format)',
    });
  }
  if (api === 'completions') return { model, prompt: form, ...sampling };
  const format = request.responseFormat ? { response_format: { type: request.responseFormat } } : {};
  return { model, messages: form, ...sampling, ...format };
}

/** The server's own explanation in an error body (`{error: {message}}`, `{detail}`, or the raw text). */
function serverMessage(text: string): string {
  try {
    const body = JSON.parse(text) as {
      error?: { message?: string } | string;
      message?: string;
      detail?: unknown;
    };
    const found =
      typeof body.error === 'string' ? body.error : (body.error?.message ?? body.message ?? body.detail);
    if (found !== undefined) return typeof found === 'string' ? found : JSON.stringify(found);
  } catch {
    // not JSON: the raw text says it
  }
  return text.slice(0, 500) || '(empty body)';
}

interface WireChoice {
  index?: number;
  text?: string;
  message?: { content?: string | null };
  finish_reason?: string | null;
}

interface WireResponse {
  choices?: WireChoice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  model?: string;
}

export class OpenAiEndpoint {
  private readonly pool: Pool;
  /** The base URL's path, e.g. `/v1`. */
  private readonly prefix: string;
  private readonly path: string;
  private destroyed = false;
  /** The model name requests carry: --model, or the one the server lists. */
  private model: string;

  constructor(private readonly options: EndpointOptions) {
    this.model = options.model;
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new MegadocsError('BAD_OPTION', `not a URL: "${options.baseUrl}"`, {
        where: '--llm',
        hint: 'Give the base URL of an OpenAI-compatible server, e.g. http://host:8000/v1',
      });
    }
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.path = `${this.prefix}/${options.api === 'chat' ? 'chat/completions' : 'completions'}`;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      pipelining: 1,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 10_000),
    });
  }

  get name(): string {
    return this.options.baseUrl;
  }

  /** One attempt. Throws TransientError (retry it), RequestFailedError (rejected) or MegadocsError (stop). */
  async send(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    const where = `${this.name} ${request.label}`;
    const body = JSON.stringify(requestBody(this.options.api, this.model, request));
    const headers = { 'content-type': 'application/json', ...this.authorization() };
    // No per-request signal (a listener per request is measurable): an abort destroys the pool instead.
    const exchange = await post(this.pool, { path: this.path, method: 'POST', headers, body });
    if ('error' in exchange) {
      if (signal?.aborted) throw signal.reason ?? exchange.error;
      throw networkError(exchange.error, where, exchange.afterHeaders);
    }
    const { status, retryAfter, text } = exchange;
    if (this.options.onRateLimit) {
      const limits = readRateLimitHeaders(exchange.headers);
      if (limits) this.options.onRateLimit(limits);
    }
    if (status === 200) return this.parse(text, request, where);
    const message = `HTTP ${status}: ${serverMessage(text)}`;
    if (RETRYABLE_STATUS.has(status) || status > 500) {
      const reason = status === 408 ? 'timeout' : `http_${status}`;
      throw new TransientError(reason, `${where}: ${message}`, parseRetryAfter(retryAfter), status !== 429);
    }
    if (status === 401 || status === 403) {
      throw new MegadocsError('LLM', `the server refused the credentials (${message})`, {
        where,
        hint: 'Set the API key in OPENAI_API_KEY, or name the variable that holds it with --api-key-env',
      });
    }
    if (status === 404) {
      throw new MegadocsError('LLM', `not found (${message})`, {
        where,
        hint: 'Check --llm (a base URL such as http://host:8000/v1), --api and --model',
      });
    }
    throw new RequestFailedError(message, `http_${status}`, true, where);
  }

  /**
   * Whether the server answers: GET /health at its root (vLLM, SGLang, TGI), else GET {base}/models. A 2xx answers,
   * and so do 4xx from both (no such routes there: the first request will tell); a 5xx (still loading) or no
   * connection does not.
   */
  async probe(): Promise<ProbeOutcome> {
    const modelsPath = `${this.prefix}/models`;
    const health = await this.get('/health');
    if ('error' in health) return { answers: false, reason: health.error };
    if (health.status < 300) return { answers: true };
    const models = await this.get(modelsPath);
    if ('status' in models && (models.status < 300 || (models.status < 500 && health.status < 500))) {
      return { answers: true };
    }
    const modelsAnswer = 'error' in models ? models.error : `HTTP ${models.status}`;
    return { answers: false, reason: `/health: HTTP ${health.status}, ${modelsPath}: ${modelsAnswer}` };
  }

  /**
   * What `GET {base}/models` lists; undefined when the server has no such route (or answers something else):
   * it is then asked for the --model given.
   */
  async models(): Promise<ServedModel[] | undefined> {
    const answer = await this.get(`${this.prefix}/models`);
    return 'status' in answer && answer.status < 300 ? servedModels(answer.text) : undefined;
  }

  /** GET `path` at the server's root (e.g. `/metrics`): its status and body, or why there is none. */
  fetchRoot(path: string): Promise<{ status: number; text: string } | { error: string }> {
    return this.get(path);
  }

  /** The model name requests carry (set once the server said what it serves). */
  useModel(model: string): void {
    this.model = model;
  }

  /** Waits for the requests in flight, then closes the sockets. */
  close(): Promise<void> {
    return this.destroyed ? Promise.resolve() : this.pool.close();
  }

  /** Fails every request in flight with `reason` at once (an aborted run). */
  destroy(reason: Error): Promise<void> {
    this.destroyed = true;
    return this.pool.destroy(reason);
  }

  private authorization(): { authorization?: string } {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  /** One probe GET: the status and body, or why there is none (`connection refused`, `timeout`, ...). */
  private async get(path: string): Promise<{ status: number; text: string } | { error: string }> {
    const timeoutMs = Math.min(this.options.timeoutMs, PROBE_TIMEOUT_MS);
    try {
      const response = await this.pool.request({
        path,
        method: 'GET',
        headers: this.authorization(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      return { status: response.statusCode, text: await response.body.text() };
    } catch (error) {
      const reason = NETWORK_REASONS[(error as { code?: string }).code ?? ''];
      return { error: reason ? reason.replaceAll('_', ' ') : messageOf(error) };
    }
  }

  private parse(text: string, request: CompletionRequest, where: string): CompletionResult {
    let wire: WireResponse;
    try {
      wire = JSON.parse(text) as WireResponse;
    } catch {
      throw new TransientError(
        'bad_response',
        `${where}: the response body is not JSON (${text.slice(0, 80)})`,
      );
    }
    if (!Array.isArray(wire.choices)) {
      throw new TransientError('bad_response', `${where}: the response has no "choices" array`);
    }
    if (wire.choices.length !== request.n) {
      throw new MegadocsError(
        'LLM',
        `asked for n=${request.n} samples, the server returned ${wire.choices.length}`,
        { where, hint: 'This server does not support the n parameter: pass --n-per-request 1' },
      );
    }
    const choices = [...wire.choices]
      .sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
      .map((choice) => ({
        text: (this.options.api === 'chat' ? choice.message?.content : choice.text) ?? '',
        finishReason: choice.finish_reason ?? 'unknown',
      }));
    return {
      choices,
      usage: {
        promptTokens: wire.usage?.prompt_tokens ?? 0,
        completionTokens: wire.usage?.completion_tokens ?? 0,
      },
      model: wire.model ?? this.model,
    };
  }
}

type IncomingHttpHeaders = Record<string, string | string[] | undefined>;

type Exchange =
  | { status: number; retryAfter?: string | string[]; headers: IncomingHttpHeaders; text: string }
  | { error: Error; afterHeaders: boolean };

/**
 * One HTTP exchange on undici's dispatch API: the body is collected as it comes, without the Readable
 * stream `request()` builds per response (measurably cheaper at thousands of requests per second).
 */
function post(pool: Pool, options: Dispatcher.DispatchOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let retryAfter: string | string[] | undefined;
    let answerHeaders: IncomingHttpHeaders = {};
    pool.dispatch(options, {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, headers) {
        status = statusCode;
        retryAfter = headers['retry-after'];
        answerHeaders = headers;
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        resolve({ status, retryAfter, headers: answerHeaders, text: Buffer.concat(chunks).toString('utf8') });
      },
      onResponseError(_controller, error) {
        resolve({ error, afterHeaders: status !== 0 });
      },
    });
  });
}

/** A failed exchange; once the headers are in, anything but a timeout means the body was cut short. */
function networkError(error: unknown, where: string, afterHeaders: boolean): TransientError {
  const code = (error as { code?: string }).code ?? '';
  let reason = NETWORK_REASONS[code] ?? `network_${code || 'error'}`;
  if (afterHeaders && reason !== 'timeout') reason = 'truncated_body';
  return new TransientError(reason, `${where}: ${messageOf(error)}`);
}
