// The HTTP layer every Hub call goes through: the token only for the Hub's own origin, redirects followed
// by hand (so the token never reaches a CDN or storage host), 429/5xx/network errors retried with backoff.
import { type Dispatcher, fetch as undiciFetch } from 'undici';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** First backoff delay; it doubles on each retry (with jitter) up to maxDelayMs. */
  baseDelayMs: number;
  /** Cap on any one wait, a server's Retry-After included. */
  maxDelayMs: number;
}

export interface RetryEvent {
  url: string;
  /** The try that failed (1-based). */
  attempt: number;
  delayMs: number;
  /** `429`, `503`, ... or the network error's code. */
  reason: string;
}

/** How to reach the Hub: values the CLI reads from HF_ENDPOINT / HF_TOKEN and passes in. */
export interface HubOptions {
  /** Base URL of the Hub (HF_ENDPOINT); default https://huggingface.co. */
  endpoint?: string;
  /** Access token (HF_TOKEN), sent only to the endpoint's own origin. */
  token?: string;
  /** undici dispatcher (e.g. an Agent with bounded `connections`); default: undici's global one. */
  dispatcher?: Dispatcher;
  retry?: Partial<RetryPolicy>;
  onRetry?: (event: RetryEvent) => void;
}

/** A ready-to-use connection to one Hub: its base URL and a fetch that applies the rules above. */
export interface HubClient {
  endpoint: string;
  hasToken: boolean;
  fetch: typeof fetch;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 60_000 };
const MAX_REDIRECTS = 10;
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** HF_ENDPOINT and HF_TOKEN from an environment the caller passes in (the CLI passes process.env). */
export function hubOptionsFromEnv(env: Record<string, string | undefined>): HubOptions {
  return {
    endpoint: env.HF_ENDPOINT?.trim() || undefined,
    token: env.HF_TOKEN?.trim() || undefined,
  };
}

export function createHubClient(options: HubOptions = {}): HubClient {
  const endpoint = (options.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  const origin = new URL(endpoint).origin;
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };

  const send = async (url: URL, init: RequestInit): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.delete('authorization');
    if (url.origin === origin && options.token) headers.set('authorization', `Bearer ${options.token}`);
    const request = { ...init, headers, redirect: 'manual', dispatcher: options.dispatcher };
    return (await undiciFetch(url, request as Parameters<typeof undiciFetch>[1])) as unknown as Response;
  };

  const hubFetch = async (input: Parameters<typeof fetch>[0], init: RequestInit = {}): Promise<Response> => {
    let url = new URL(typeof input === 'object' && 'url' in input ? input.url : String(input));
    let request = init;
    for (let hop = 0; ; hop += 1) {
      const current = url;
      const currentRequest = request;
      const response = await withRetries(
        () => send(current, currentRequest),
        current,
        init,
        policy,
        options.onRetry,
      );
      const location = response.headers.get('location');
      if (!REDIRECT_STATUSES.has(response.status) || !location) return response;
      await response.body?.cancel();
      if (hop === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects from ${input}`);
      url = new URL(location, url);
      const method = (request.method ?? 'GET').toUpperCase();
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && method === 'POST')
      ) {
        request = { ...request, method: 'GET', body: undefined };
      }
    }
  };

  return { endpoint, hasToken: Boolean(options.token), fetch: hubFetch as typeof fetch };
}

/** Runs `attempt` until it gives a non-retryable answer or the policy's tries are spent. */
async function withRetries(
  attempt: () => Promise<Response>,
  url: URL,
  init: RequestInit,
  policy: RetryPolicy,
  onRetry: HubOptions['onRetry'],
): Promise<Response> {
  const canResend = !(init.body instanceof ReadableStream);
  for (let tried = 1; ; tried += 1) {
    let response: Response | undefined;
    let reason: string;
    try {
      response = await attempt();
      if (!RETRY_STATUSES.has(response.status)) return response;
      reason = String(response.status);
    } catch (error) {
      if (init.signal?.aborted || !canResend || tried >= policy.attempts) throw error;
      reason = networkErrorCode(error);
    }
    if (response && (tried >= policy.attempts || !canResend)) return response;
    const delayMs = retryDelay(response?.headers.get('retry-after') ?? null, tried, policy);
    await response?.body?.cancel();
    onRetry?.({ url: url.href, attempt: tried, delayMs, reason });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    init.signal?.throwIfAborted();
  }
}

/** Retry-After (seconds or an HTTP date) when the server sent one, else exponential backoff with jitter. */
export function retryDelay(retryAfter: string | null, attempt: number, policy: RetryPolicy): number {
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms)) return Math.min(policy.maxDelayMs, Math.max(0, ms));
  }
  const backoff = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(policy.maxDelayMs, backoff * (0.5 + Math.random() / 2));
}

function networkErrorCode(error: unknown): string {
  const cause = (error as { cause?: { code?: string } })?.cause;
  return cause?.code ?? (error instanceof Error ? error.message : String(error));
}
