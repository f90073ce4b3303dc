// The LlmBackend for OpenAI-compatible servers: at most C requests in flight over all endpoints (or, under auto, each
// endpoint's own limit), each attempt on the healthy endpoint with most room, transient failures retried (lib/retry.ts).
import { performance } from 'node:perf_hooks';
import { Gauge } from '../generate/gauge.js';
import { Limiter } from '../generate/limiter.js';
import { createGenerateStats, type GenerateStats, increment, recordLatency } from '../generate/stats.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, TransientError, withRetry } from '../retry.js';
import {
  type CompletionRequest,
  type CompletionResult,
  type LlmBackend,
  type PromptFormat,
  RequestFailedError,
} from './backend.js';
import { type ApiKind, isConnectionLoss, isUnreachable, OpenAiEndpoint } from './client.js';
import { DEFAULT_MAX_CONCURRENCY } from './concurrency-controller.js';
import { discoverModel, type ServedModelInfo } from './discovery.js';
import { type ConcurrencyFigures, type ConcurrencyMode, EndpointControl } from './endpoint-control.js';
import { type AttemptHealth, DEFAULT_HEALTH_POLICY, EndpointSet, type HealthPolicy } from './endpoints.js';
import { estimatedTokens, type RateLimits } from './rate-limit.js';
import { DEFAULT_SERVER_WAIT, type ServerWaitOptions } from './server-wait.js';

export interface HttpBackendOptions {
  /** Base URLs (`--llm`), e.g. `http://host:8000/v1`. */
  urls: string[];
  api: ApiKind;
  /** The model requests name (`--model`); when not given, discover() asks the servers. */
  model?: string;
  /** Sent as a bearer token; never logged or stored. */
  apiKey?: string;
  /**
   * Requests in flight: a number fixes it across all endpoints (`--concurrency N`); `auto` gives each endpoint a
   * limit its server's load moves (`/metrics`, else our own throughput), all together at most `maxConcurrency`.
   */
  concurrency: number | 'auto';
  /** The cap of `auto` (`--max-concurrency`, default DEFAULT_MAX_CONCURRENCY). */
  maxConcurrency?: number;
  /** Requests and tokens per minute per endpoint (`--rpm`, `--tpm`); the servers' x-ratelimit headers add to them. */
  rateLimits?: RateLimits;
  /** ms between an endpoint's /metrics samples and throughput measurements (default 500). */
  controlIntervalMs?: number;
  /** Per-attempt timeout (`--timeout`, in ms here). */
  timeoutMs: number;
  retry?: RetryPolicy;
  health?: HealthPolicy;
  /** Updated as requests go: attempts, in flight, retries by cause, latency. */
  stats?: GenerateStats;
  /** How long requests wait for a server while none answers (`--wait-for-server`), how often that is reported. */
  serverWait?: Partial<Omit<ServerWaitOptions, 'onWaiting'>>;
  /** Told what is waited for while no server answers: when the wait starts, then every 30 s. */
  onWarning?: (message: string) => void;
}

/** How a failed attempt reflects on its endpoint; a broken connection asks a probe whether the server went away. */
async function healthAfter(error: unknown, endpoint: OpenAiEndpoint): Promise<AttemptHealth> {
  if (!(error instanceof TransientError)) return error instanceof RequestFailedError ? 'ok' : 'neutral';
  if (isUnreachable(error)) return 'refused';
  if (isConnectionLoss(error) && !(await endpoint.probe()).answers) return 'refused';
  return error.endpointFault ? 'fault' : 'neutral';
}

export class HttpBackend implements LlmBackend {
  private readonly mode: ConcurrencyMode;
  readonly format: PromptFormat;
  private readonly limiter: Limiter;
  private readonly endpoints: EndpointSet;
  private readonly servers: OpenAiEndpoint[];
  private readonly controls: EndpointControl[];
  private served: ServedModelInfo;
  private readonly retry: RetryPolicy;
  private readonly stats: GenerateStats;
  private readonly watched = new WeakSet<AbortSignal>();
  /** Requests between a failed try and the next one. */
  readonly retryWaits = new Gauge();
  /** Aborted by close() or a request's signal: ends a wait for the server. */
  private readonly stopped = new AbortController();

  constructor(options: HttpBackendOptions) {
    this.mode =
      options.concurrency === 'auto'
        ? { mode: 'auto', max: options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY }
        : { mode: 'fixed', limit: options.concurrency };
    const cap = this.mode.mode === 'auto' ? this.mode.max : this.mode.limit;
    this.format = options.api === 'chat' ? 'chat' : 'text';
    this.limiter = new Limiter(cap);
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.stats = options.stats ?? createGenerateStats();
    this.served = { model: options.model ?? '' };
    const parts = options.urls.map((baseUrl) => {
      const endpoint = new OpenAiEndpoint({
        baseUrl,
        api: options.api,
        model: this.served.model,
        apiKey: options.apiKey,
        // A socket per request it may get, and one for /metrics.
        connections: cap + 1,
        timeoutMs: options.timeoutMs,
        onRateLimit: (state) => control.rateLimited(state),
      });
      const control = new EndpointControl(endpoint, {
        concurrency: this.mode,
        rateLimits: options.rateLimits ?? {},
        intervalMs: options.controlIntervalMs,
      });
      return { endpoint, control };
    });
    this.servers = parts.map((part) => part.endpoint);
    this.controls = parts.map((part) => part.control);
    this.endpoints = new EndpointSet(parts, options.health ?? DEFAULT_HEALTH_POLICY, {
      ...DEFAULT_SERVER_WAIT,
      ...options.serverWait,
      onWaiting: options.onWarning,
    });
    this.stats.concurrency = { ...this.mode, endpoints: this.endpoints.figures } as ConcurrencyFigures;
    for (const control of this.controls) control.start(() => this.endpoints.limitsChanged());
  }

  /** Requests the backend takes at once now: --concurrency N, or under auto the endpoints' limits summed (capped). */
  get concurrency(): number {
    return this.mode.mode === 'auto' ? Math.min(this.mode.max, this.endpoints.totalLimit) : this.mode.limit;
  }

  get model(): string {
    return this.served.model;
  }

  get contextSize(): number | undefined {
    return this.served.contextSize;
  }

  /**
   * Once a server answers (waiting as requests would), asks what the servers serve (GET /v1/models): the model
   * when none was given, a given one they do not serve refused, and the context size. Before any request;
   * `signal` (the run's interrupt) ends the wait for a server that does not answer.
   */
  async discover(signal?: AbortSignal): Promise<void> {
    if (signal) this.watch(signal);
    await this.endpoints.untilAnswering(this.stopped.signal);
    this.served = await discoverModel(this.servers, this.served.model || undefined);
    for (const endpoint of this.servers) endpoint.useModel(this.served.model);
  }

  /** Endpoints out of rotation right now. */
  get endpointsDown(): number {
    return this.endpoints.down;
  }

  async complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    if (signal) this.watch(signal);
    // From a failed try until the next one starts (or the request ends), it waits out a backoff.
    const backingOff = this.retryWaits.member();
    try {
      return await withRetry(
        () => {
          backingOff(false);
          return this.tryWhenAnswering(request, signal);
        },
        {
          policy: this.retry,
          signal,
          onRetry: ({ reason }) => {
            increment(this.stats.retries, reason);
            backingOff(true);
          },
        },
      );
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      throw new RequestFailedError(
        `gave up after ${this.retry.maxRetries + 1} attempts (${error.message})`,
        error.reason,
        false,
        request.label,
      );
    } finally {
      backingOff(false);
    }
  }

  close(): Promise<void> {
    for (const control of this.controls) control.stop();
    this.stopped.abort(new Error('the LLM backend is closed'));
    return this.endpoints.close();
  }

  /**
   * One try, as --max-retries counts them: sent once some server answers. A try that finds no server any more
   * (refused, or cut off and then refused: every endpoint went down) waits for one and goes again without
   * counting. When a server answers at once, the failure came just before it was back: forgiven once, then it counts.
   */
  private async tryWhenAnswering(
    request: CompletionRequest,
    signal?: AbortSignal,
  ): Promise<CompletionResult> {
    if (!this.endpoints.answering) await this.endpoints.untilAnswering(this.stopped.signal);
    let forgiven = false;
    while (true) {
      try {
        return await this.limited(request, signal);
      } catch (error) {
        const serverGone =
          error instanceof TransientError &&
          (isUnreachable(error) || isConnectionLoss(error)) &&
          !this.endpoints.answering;
        if (!serverGone) throw error;
        const waited = await this.endpoints.untilAnswering(this.stopped.signal);
        if (!waited && forgiven) throw error;
        forgiven ||= !waited;
      }
    }
  }

  /** One listener per signal, not per request: when it aborts, every request in flight fails at once. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    const destroy = () => {
      const reason = signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
      this.stopped.abort(reason);
      void this.endpoints.destroy(reason);
    };
    if (signal.aborted) destroy();
    else signal.addEventListener('abort', destroy, { once: true });
  }

  /** One attempt in one of the C slots. */
  private async limited(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    // No signal here: after an abort the slot is taken and the attempt fails at once on the destroyed pool.
    const release = await this.limiter.acquire();
    try {
      return await this.attempt(request, signal);
    } finally {
      release();
    }
  }

  private async attempt(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    const lease = await this.endpoints.lease({ n: request.n, tokens: estimatedTokens(request) }, signal);
    const started = performance.now();
    this.stats.requests.sent += 1;
    this.stats.requests.inFlight += 1;
    try {
      const result = await lease.endpoint.send(request, signal);
      lease.finish('ok', result.usage.completionTokens);
      recordLatency(this.stats.latency, performance.now() - started);
      return result;
    } catch (error) {
      if (error instanceof TransientError && (error.reason === 'http_429' || error.reason === 'http_503')) {
        lease.control.overloaded(error.reason === 'http_429' ? 429 : 503, error.retryAfterMs);
      }
      lease.finish(await healthAfter(error, lease.endpoint));
      throw error;
    } finally {
      this.stats.requests.inFlight -= 1;
    }
  }
}
