// Every retry loop's rules in one place: the policies (tries, backoff), the `Retry-After` rule, the backoff, and
// withRetry, the loop that LLM requests, Hub requests, push commits and Hub file downloads all run through.

export interface RetryPolicy {
  /** Attempts after the first one (`--max-retries`). */
  maxRetries: number;
  /** Backoff before retry k is baseDelayMs * 2^k, jittered to between half and all of it. */
  baseDelayMs: number;
  /** Upper bound of the backoff (not of `Retry-After`, which the server decides). */
  maxDelayMs: number;
}

/** LLM requests (backends/http-backend.ts; `--max-retries` replaces maxRetries). */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxRetries: 8, baseDelayMs: 500, maxDelayMs: 30_000 };
/** Each Hub request on 429/5xx/network errors (hub/client.ts), and each push commit on 412/429/5xx (hub/push.ts). */
export const HUB_RETRY_POLICY: RetryPolicy = { maxRetries: 7, baseDelayMs: 500, maxDelayMs: 60_000 };
/** A Hub file download (hub/download.ts): each try resumes at once where the last stopped. */
export const DOWNLOAD_RETRY_POLICY: RetryPolicy = { maxRetries: 3, baseDelayMs: 0, maxDelayMs: 0 };

/** Overrides of a policy; `attempts` (tries in all, the first included) is another way to say maxRetries + 1. */
export type RetryOverrides = Partial<RetryPolicy> & { attempts?: number };

/** `base` with the overrides that are set. */
export function retryPolicy(base: RetryPolicy, overrides: RetryOverrides = {}): RetryPolicy {
  const { attempts, ...rest } = overrides;
  const set = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined));
  const tries = attempts === undefined ? {} : { maxRetries: Math.max(0, attempts - 1) };
  return { ...base, ...set, ...tries };
}

/** A failure worth another attempt: `reason` names it in the summary (`http_503`, `timeout`, ...). */
export class TransientError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** Milliseconds the server asked us to wait (`Retry-After`). */
    readonly retryAfterMs?: number,
    /** The endpoint itself misbehaved (refused, reset, 5xx): counts against its health. */
    readonly endpointFault = true,
  ) {
    super(message);
    this.name = 'TransientError';
  }
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Delay before retry number `attempt` (0-based): the server's `Retry-After` when it gave one, whole (maxDelayMs
 * caps only our own backoff: retrying sooner than asked just earns another 429), else jittered backoff.
 */
export function retryDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return ceiling * (0.5 + 0.5 * random());
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Why a failed try is worth another: the name it is counted and logged under, and the server's wish. */
export interface RetryCause {
  reason: string;
  retryAfterMs?: number;
}

/** A retry about to wait: the try that failed (1-based), the wait, why, and what the try threw. */
export interface RetryNotice extends RetryCause {
  attempt: number;
  delayMs: number;
  error: unknown;
}

/** Which try this is; on the last one a caller may return a retryable answer rather than throw it away. */
export interface AttemptInfo {
  attempt: number;
  last: boolean;
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** An abort ends the loop with the signal's reason, after a failed try or during the wait. */
  signal?: AbortSignal;
  /** Why a failure is worth another try, or undefined when it must go through at once (default: TransientError). */
  classify?: (error: unknown) => RetryCause | undefined;
  /** Told (and awaited) before each wait: count it, log it. */
  onRetry?: (notice: RetryNotice) => void | Promise<void>;
}

/** The cause a TransientError carries (the default `classify`). */
export function transientCause(error: unknown): RetryCause | undefined {
  return error instanceof TransientError
    ? { reason: error.reason, retryAfterMs: error.retryAfterMs }
    : undefined;
}

/**
 * Runs `attempt` until it resolves, throws what `classify` does not retry, or the policy's retries are spent
 * (then the last failure is thrown as it is); between tries it waits retryDelay().
 */
export async function withRetry<T>(
  attempt: (info: AttemptInfo) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const { policy, signal } = options;
  const classify = options.classify ?? transientCause;
  for (let tried = 1; ; tried += 1) {
    try {
      return await attempt({ attempt: tried, last: tried > policy.maxRetries });
    } catch (error) {
      const cause = classify(error);
      if (!cause || tried > policy.maxRetries) throw error;
      signal?.throwIfAborted();
      const delayMs = retryDelay(tried - 1, policy, cause.retryAfterMs);
      await options.onRetry?.({ ...cause, attempt: tried, delayMs, error });
      await sleep(delayMs, signal);
    }
  }
}
