// The LlmBackend for OpenAI-compatible servers: at most C requests in flight over all endpoints,
// each attempt on the least busy healthy endpoint, transient failures retried (withRetry, lib/retry.ts).
import { performance } from 'node:perf_hooks';
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
import { type ApiKind, OpenAiEndpoint } from './client.js';
import { type AttemptHealth, DEFAULT_HEALTH_POLICY, EndpointSet, type HealthPolicy } from './endpoints.js';

export interface HttpBackendOptions {
  /** Base URLs (`--llm`), e.g. `http://host:8000/v1`. */
  urls: string[];
  api: ApiKind;
  model: string;
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
  /** Told once when no server has answered yet and one cannot be reached (e.g. a server still starting). */
  onWarning?: (message: string) => void;
}

function healthOf(error: TransientError): AttemptHealth {
  if (error.reason === 'connection_refused') return 'refused';
  return error.endpointFault ? 'fault' : 'neutral';
}

export class HttpBackend implements LlmBackend {
  readonly concurrency: number;
  readonly format: PromptFormat;
  private readonly limiter: Limiter;
  private readonly endpoints: EndpointSet;
  private readonly retry: RetryPolicy;
  private readonly stats: GenerateStats;
  private readonly watched = new WeakSet<AbortSignal>();
  /** Some server has answered (with anything); until then an unreachable one is warned about, once. */
  private answered = false;
  private warned = false;

  constructor(options: HttpBackendOptions) {
    this.concurrency = options.concurrency;
    this.format = options.api === 'chat' ? 'chat' : 'text';
    this.limiter = new Limiter(options.concurrency);
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.stats = options.stats ?? createGenerateStats();
    const endpoints = options.urls.map(
      (baseUrl) =>
        new OpenAiEndpoint({
          baseUrl,
          api: options.api,
          model: options.model,
          apiKey: options.apiKey,
          connections: options.concurrency,
          timeoutMs: options.timeoutMs,
        }),
    );
    this.endpoints = new EndpointSet(endpoints, options.health ?? DEFAULT_HEALTH_POLICY);
    this.onWarning = options.onWarning;
  }

  private readonly onWarning?: (message: string) => void;

  /** Endpoints out of rotation right now. */
  get endpointsDown(): number {
    return this.endpoints.down;
  }

  async complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    if (signal) this.watch(signal);
    try {
      return await withRetry(() => this.limited(request, signal), {
        policy: this.retry,
        signal,
        onRetry: ({ reason, error }) => {
          increment(this.stats.retries, reason);
          this.warnIfUnreachable(error as TransientError);
        },
      });
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      throw new RequestFailedError(
        `gave up after ${this.retry.maxRetries + 1} attempts (${error.message})`,
        error.reason,
        false,
        request.label,
      );
    }
  }

  close(): Promise<void> {
    return this.endpoints.close();
  }

  private warnIfUnreachable(failure: TransientError): void {
    // A refused connection means nothing listens at the URL (yet): worth a word before the retries run out.
    if (this.answered || this.warned || failure.reason !== 'connection_refused') return;
    this.warned = true;
    this.onWarning?.(
      `no server has answered yet (${failure.message}); each request is retried with backoff ` +
        `(--max-retries ${this.retry.maxRetries}) before it fails. Start the server, or check --llm`,
    );
  }

  /** One listener per signal, not per request: when it aborts, every request in flight fails at once. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    const destroy = () => {
      const reason = signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
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
      this.answered = true;
      lease.finish('ok');
      recordLatency(this.stats.latency, performance.now() - started);
      return result;
    } catch (error) {
      if (error instanceof TransientError) lease.finish(healthOf(error));
      else lease.finish(error instanceof RequestFailedError ? 'ok' : 'neutral');
      throw error;
    } finally {
      this.stats.requests.inFlight -= 1;
    }
  }
}
