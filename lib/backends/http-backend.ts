// The LlmBackend for OpenAI-compatible servers: at most C requests in flight over all endpoints, each attempt on
// the least busy healthy endpoint, transient failures retried (withRetry, lib/retry.ts), none sent while no server answers.
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
import { discoverModel, type ServedModelInfo } from './discovery.js';
import { type AttemptHealth, DEFAULT_HEALTH_POLICY, EndpointSet, type HealthPolicy } from './endpoints.js';
import { DEFAULT_SERVER_WAIT, type ServerWaitOptions } from './server-wait.js';

export interface HttpBackendOptions {
  /** Base URLs (`--llm`), e.g. `http://host:8000/v1`. */
  urls: string[];
  api: ApiKind;
  /** The model requests name (`--model`); when not given, discover() asks the servers. */
  model?: string;
  /** Sent as a bearer token; never logged or stored. */
  apiKey?: string;
  /** Requests in flight across all endpoints (`--concurrency`). */
  concurrency: number;
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
  readonly concurrency: number;
  readonly format: PromptFormat;
  private readonly limiter: Limiter;
  private readonly endpoints: EndpointSet;
  private readonly servers: OpenAiEndpoint[];
  private served: ServedModelInfo;
  private readonly retry: RetryPolicy;
  private readonly stats: GenerateStats;
  private readonly watched = new WeakSet<AbortSignal>();
  /** Requests between a failed try and the next one. */
  readonly retryWaits = new Gauge();
  /** Aborted by close() or a request's signal: ends a wait for the server. */
  private readonly stopped = new AbortController();

  constructor(options: HttpBackendOptions) {
    this.concurrency = options.concurrency;
    this.format = options.api === 'chat' ? 'chat' : 'text';
    this.limiter = new Limiter(options.concurrency);
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.stats = options.stats ?? createGenerateStats();
    this.served = { model: options.model ?? '' };
    const endpoints = options.urls.map(
      (baseUrl) =>
        new OpenAiEndpoint({
          baseUrl,
          api: options.api,
          model: this.served.model,
          apiKey: options.apiKey,
          connections: options.concurrency,
          timeoutMs: options.timeoutMs,
        }),
    );
    this.servers = endpoints;
    this.endpoints = new EndpointSet(endpoints, options.health ?? DEFAULT_HEALTH_POLICY, {
      ...DEFAULT_SERVER_WAIT,
      ...options.serverWait,
      onWaiting: options.onWarning,
    });
  }

  get model(): string {
    return this.served.model;
  }

  get contextSize(): number | undefined {
    return this.served.contextSize;
  }

  /**
   * Once a server answers (waiting as requests would), asks what the servers serve (GET /v1/models): the model
   * when none was given, a given one they do not serve refused, and the context size. Before any request.
   */
  async discover(): Promise<void> {
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
    const lease = await this.endpoints.lease(signal);
    const started = performance.now();
    this.stats.requests.sent += 1;
    this.stats.requests.inFlight += 1;
    try {
      const result = await lease.endpoint.send(request, signal);
      lease.finish('ok');
      recordLatency(this.stats.latency, performance.now() - started);
      return result;
    } catch (error) {
      lease.finish(await healthAfter(error, lease.endpoint));
      throw error;
    } finally {
      this.stats.requests.inFlight -= 1;
    }
  }
}
