// When and how long to wait before sending a failed request again: exponential backoff with jitter,
// and the server's `Retry-After` (seconds or an HTTP date), which always wins over the backoff.

export interface RetryPolicy {
  /** Attempts after the first one (`--max-retries`). */
  maxRetries: number;
  /** Backoff before retry k is baseDelayMs * 2^k, jittered to between half and all of it. */
  baseDelayMs: number;
  /** Upper bound of the backoff (not of `Retry-After`, which the server decides). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxRetries: 8, baseDelayMs: 500, maxDelayMs: 30_000 };

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

/** Delay before retry number `attempt` (0-based): the server's wish if it gave one, else jittered backoff. */
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
