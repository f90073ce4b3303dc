// The HTTP layer every Hub call goes through (undici.request): the token only for the Hub's own origin,
// redirects followed by hand (so it never reaches a CDN or storage host), 429/5xx/network errors retried.
import type { Readable } from 'node:stream';
import { type Dispatcher, request as undiciRequest } from 'undici';
import { fetchOver } from './fetch.js';

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

export interface HubRequest {
  method?: string;
  headers?: Record<string, string>;
  /** A body that can be sent again on a retry: bytes, text, or a function that makes a fresh stream. */
  body?: string | Uint8Array | (() => Readable);
  signal?: AbortSignal;
}

export interface HubResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: string;
}

/** A connection to one Hub: its base URL, a request function that applies the rules above, and a fetch on it. */
export interface HubClient {
  endpoint: string;
  hasToken: boolean;
  request(url: string, init?: HubRequest): Promise<HubResponse>;
  /** The same rules behind the fetch interface, for @huggingface/hub (which is given no token itself). */
  fetch: typeof fetch;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 60_000 };
const MAX_REDIRECTS = 10;
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Network errors that another try will not fix: an unknown host name (a typo in HF_ENDPOINT, or offline). */
const PERMANENT_ERRORS = new Set(['ENOTFOUND']);

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

  const send = (url: URL, init: HubRequest): Promise<Dispatcher.ResponseData> => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(init.headers ?? {})) {
      if (name.toLowerCase() !== 'authorization') headers[name.toLowerCase()] = value;
    }
    if (url.origin === origin && options.token) headers.authorization = `Bearer ${options.token}`;
    const body = typeof init.body === 'function' ? init.body() : init.body;
    return undiciRequest(url, {
      method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body,
      signal: init.signal,
      dispatcher: options.dispatcher,
    });
  };

  const request = async (input: string, init: HubRequest = {}): Promise<HubResponse> => {
    let url = new URL(input);
    let current = init;
    for (let hop = 0; ; hop += 1) {
      const target = url;
      const sent = current;
      const response = await withRetries(() => send(target, sent), target, init, policy, options.onRetry);
      const location = response.headers.location;
      if (!REDIRECT_STATUSES.has(response.statusCode) || typeof location !== 'string') {
        return { status: response.statusCode, headers: response.headers, body: response.body, url: url.href };
      }
      await response.body.dump();
      if (hop === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects from ${input}`);
      url = new URL(location, url);
      const method = (current.method ?? 'GET').toUpperCase();
      if (response.statusCode === 303 || ([301, 302].includes(response.statusCode) && method === 'POST')) {
        current = { ...current, method: 'GET', body: undefined };
      }
    }
  };

  return { endpoint, hasToken: Boolean(options.token), request, fetch: fetchOver(request) };
}

/** Runs `attempt` until it gives a non-retryable answer or the policy's tries are spent. */
async function withRetries(
  attempt: () => Promise<Dispatcher.ResponseData>,
  url: URL,
  init: HubRequest,
  policy: RetryPolicy,
  onRetry: HubOptions['onRetry'],
): Promise<Dispatcher.ResponseData> {
  for (let tried = 1; ; tried += 1) {
    let response: Dispatcher.ResponseData | undefined;
    let reason: string;
    try {
      response = await attempt();
      if (!RETRY_STATUSES.has(response.statusCode) || tried >= policy.attempts) return response;
      reason = String(response.statusCode);
    } catch (error) {
      reason = networkErrorCode(error);
      if (init.signal?.aborted || tried >= policy.attempts || PERMANENT_ERRORS.has(reason)) throw error;
    }
    const retryAfter = response?.headers['retry-after'];
    const delayMs = retryDelay(typeof retryAfter === 'string' ? retryAfter : null, tried, policy);
    await response?.body.dump();
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
  const code = (error as { code?: string; cause?: { code?: string } })?.code;
  const cause = (error as { cause?: { code?: string } })?.cause?.code;
  return cause ?? code ?? (error instanceof Error ? error.message : String(error));
}
