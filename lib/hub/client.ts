// The HTTP layer every Hub call goes through (undici.request): the token only for the Hub's own origin, redirects
// followed by hand (so it never reaches a CDN or storage host), 429/5xx/network errors retried (lib/retry.ts).
import type { Readable } from 'node:stream';
import { type Dispatcher, request as undiciRequest } from 'undici';
import {
  type AttemptInfo,
  HUB_RETRY_POLICY,
  parseRetryAfter,
  type RetryCause,
  type RetryOverrides,
  retryPolicy,
  TransientError,
  transientCause,
  withRetry,
} from '../retry.js';
import { fetchOver } from './fetch.js';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** A Hub request about to be sent again (what `onRetry` is told). */
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
  /** Overrides of HUB_RETRY_POLICY (lib/retry.ts) for each request. */
  retry?: RetryOverrides;
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
  const policy = retryPolicy(HUB_RETRY_POLICY, options.retry);

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

  /** One try: a 429/5xx answer is thrown as a TransientError (its body read off), except on the last try. */
  const sendOnce = async (url: URL, init: HubRequest, { last }: AttemptInfo) => {
    const answer = await send(url, init);
    if (last || !RETRY_STATUSES.has(answer.statusCode)) return answer;
    await answer.body.dump();
    const status = String(answer.statusCode);
    throw new TransientError(
      status,
      `${url.href} answered ${status}`,
      parseRetryAfter(answer.headers['retry-after']),
    );
  };

  const request = async (input: string, init: HubRequest = {}): Promise<HubResponse> => {
    let url = new URL(input);
    let current = init;
    for (let hop = 0; ; hop += 1) {
      const target = url;
      const sent = current;
      const response = await withRetry((info) => sendOnce(target, sent, info), {
        policy,
        signal: init.signal,
        classify: retryCause,
        onRetry: ({ attempt, delayMs, reason }) =>
          options.onRetry?.({ url: target.href, attempt, delayMs, reason }),
      });
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

/** The Range header for bytes [start, end) of a file (to its end without `end`); none for the whole file. */
export function rangeHeaders(start: number, end?: number): Record<string, string> {
  if (start === 0 && end === undefined) return {};
  return { range: `bytes=${start}-${end === undefined ? '' : end - 1}` };
}

/** Where the bytes of a 206 answer start (its Content-Range), or undefined when it does not say. */
export function rangeStart(response: HubResponse): number | undefined {
  const range = response.headers['content-range'];
  const from = /^bytes (\d+)-/.exec(typeof range === 'string' ? range : '')?.[1];
  return from === undefined ? undefined : Number(from);
}

/** Retryable answers (429, 5xx) and network errors, except an unknown host. */
function retryCause(error: unknown): RetryCause | undefined {
  const reason = networkErrorCode(error);
  return transientCause(error) ?? (PERMANENT_ERRORS.has(reason) ? undefined : { reason });
}

function networkErrorCode(error: unknown): string {
  const code = (error as { code?: string; cause?: { code?: string } })?.code;
  const cause = (error as { cause?: { code?: string } })?.cause?.code;
  return cause ?? code ?? (error instanceof Error ? error.message : String(error));
}
