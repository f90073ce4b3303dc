// The hosted-API mode of test/helpers/vllm-sim.ts: requests and tokens per (scaled) minute in sliding or fixed
// windows, OpenAI's x-ratelimit-* headers (durations as "1s", "6m0s", "20ms") and its 429 error body.
import { performance } from 'node:perf_hooks';

export interface HostedLimits {
  /** Requests per window (a simulated minute). */
  rpm?: number;
  /** Tokens per window, counted as OpenAI does: the prompt's estimate + max_tokens x n. */
  tpm?: number;
  /** `sliding` (default): the last window's admissions count; `fixed`: windows aligned to the server's start. */
  window?: 'sliding' | 'fixed';
  /**
   * The window's length in real ms (default 60,000 x timeScale: a simulated minute). The headers say what OpenAI's
   * do, per real minute: the limit and what remains x 60,000 / windowMs (a 3 s window of rpm 120 says 2,400),
   * the reset in real time; a client told the rate by flag gets the same rpm x 60,000 / windowMs.
   */
  windowMs?: number;
}

/** Go's time.Duration format, which OpenAI's reset headers use: "20ms", "1s", "1.5s", "6m0s", "1h0m0s". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${trim(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = trim((ms % 60_000) / 1000);
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** Up to 3 decimals, trailing zeros dropped. */
function trim(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

interface Admission {
  at: number;
  tokens: number;
}

export type RateDecision =
  | { allowed: true; headers: Record<string, string> }
  | { allowed: false; headers: Record<string, string>; retryAfterMs: number; message: string; type: string };

/** Admits or refuses requests under rpm/tpm; a window lasts `windowMs` of real time (60 s x timeScale). */
export class HostedRateLimiter {
  /** Admissions still in the window, oldest first. */
  private admissions: Admission[] = [];
  private readonly startedAt = performance.now();

  constructor(
    private readonly limits: HostedLimits,
    private readonly windowMs: number,
    private readonly model: string,
  ) {}

  /** Decides on a request of `tokens` (OpenAI's count); admitted ones count against the window. */
  request(tokens: number): RateDecision {
    const now = performance.now();
    this.expire(now);
    const usedRequests = this.admissions.length;
    const usedTokens = this.admissions.reduce((sum, admission) => sum + admission.tokens, 0);
    const { rpm, tpm } = this.limits;
    const overRequests = rpm !== undefined && usedRequests + 1 > rpm;
    const overTokens = tpm !== undefined && usedTokens + tokens > tpm;
    if (!overRequests && !overTokens) {
      this.admissions.push({ at: now, tokens });
      return { allowed: true, headers: this.headers(now, usedRequests + 1, usedTokens + tokens) };
    }
    const retryAfterMs = Math.max(
      1,
      Math.max(
        overRequests ? this.freedAt(now, (count) => usedRequests - count + 1 <= rpm!) : 0,
        overTokens ? this.freedAt(now, (_count, freed) => usedTokens - freed + tokens <= tpm!) : 0,
      ) - now,
    );
    const [unit, limit, used, requested] = overRequests
      ? ['requests per min (RPM)', rpm, usedRequests, 1]
      : ['tokens per min (TPM)', tpm, usedTokens, tokens];
    const message =
      `Rate limit reached for ${this.model} in organization org-sim on ${unit}: Limit ${limit}, Used ${used}, ` +
      `Requested ${requested}. Please try again in ${formatDuration(retryAfterMs)}. ` +
      'Visit https://platform.openai.com/account/rate-limits to learn more.';
    return {
      allowed: false,
      headers: {
        ...this.headers(now, usedRequests, usedTokens),
        'retry-after': trim(retryAfterMs / 1000),
        'retry-after-ms': String(Math.ceil(retryAfterMs)),
      },
      retryAfterMs,
      message,
      type: overRequests ? 'requests' : 'tokens',
    };
  }

  /** Drops the admissions that left the window (sliding), or those of past windows (fixed). */
  private expire(now: number): void {
    const boundary =
      this.limits.window === 'fixed' ? this.windowEnd(now) - this.windowMs : now - this.windowMs;
    let drop = 0;
    while (drop < this.admissions.length && this.admissions[drop]!.at <= boundary) drop += 1;
    if (drop > 0) this.admissions = this.admissions.slice(drop);
  }

  private windowEnd(now: number): number {
    return this.startedAt + (Math.floor((now - this.startedAt) / this.windowMs) + 1) * this.windowMs;
  }

  /**
   * When enough has left the window: the departure of the first admission after which `enough(count, tokens)`
   * holds for the count and tokens departed by then (fixed windows: the window's end).
   */
  private freedAt(now: number, enough: (count: number, tokens: number) => boolean): number {
    if (this.limits.window === 'fixed') return this.windowEnd(now);
    let tokens = 0;
    for (const [index, admission] of this.admissions.entries()) {
      tokens += admission.tokens;
      if (enough(index + 1, tokens)) return admission.at + this.windowMs;
    }
    // More than a whole window's limit: it never fits; say when the window is empty.
    return (this.admissions.at(-1)?.at ?? now) + this.windowMs;
  }

  /** The x-ratelimit-* headers of the configured limits; reset: until the window holds nothing again. */
  private headers(now: number, usedRequests: number, usedTokens: number): Record<string, string> {
    const last = this.admissions.at(-1);
    const resetAt = !last
      ? now
      : this.limits.window === 'fixed'
        ? this.windowEnd(now)
        : last.at + this.windowMs;
    const reset = formatDuration(resetAt - now);
    const headers: Record<string, string> = {};
    /** A count per window as the count per real minute the headers state. */
    const perMinute = (count: number) => String(Math.floor((count * 60_000) / this.windowMs));
    if (this.limits.rpm !== undefined) {
      headers['x-ratelimit-limit-requests'] = perMinute(this.limits.rpm);
      headers['x-ratelimit-remaining-requests'] = perMinute(Math.max(0, this.limits.rpm - usedRequests));
      headers['x-ratelimit-reset-requests'] = reset;
    }
    if (this.limits.tpm !== undefined) {
      headers['x-ratelimit-limit-tokens'] = perMinute(this.limits.tpm);
      headers['x-ratelimit-remaining-tokens'] = perMinute(Math.max(0, this.limits.tpm - usedTokens));
      headers['x-ratelimit-reset-tokens'] = reset;
    }
    return headers;
  }
}
