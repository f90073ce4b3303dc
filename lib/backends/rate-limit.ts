// Keeps one endpoint under its requests and tokens per minute (`--rpm`, `--tpm`): two token buckets refilled
// continuously, tightened by what the server's x-ratelimit headers say is left, and emptied by a 429.
import type { CompletionRequest } from './backend.js';
import type { RateLimitState } from './ratelimit-headers.js';

export interface RateLimits {
  /** Requests per minute. */
  rpm?: number;
  /** Tokens per minute, prompt and max_tokens × n as servers reserve them. */
  tpm?: number;
}

/** The share of a stated limit aimed at, so that a sliding window never sees more (timing noise, estimates). */
const TARGET_SHARE = 0.95;
/** Seconds of allowance a bucket holds at most: a burst no larger than this (with the share, under any window). */
const BURST_SECONDS = 0.1;

/** Tokens a request is charged: its prompt (4 characters a token, rounded up) and max_tokens for each of its n. */
export function estimatedTokens(request: CompletionRequest): number {
  const characters =
    request.prompt?.length ??
    (request.messages ?? []).reduce((sum, message) => sum + message.content.length, 0);
  return Math.ceil(characters / 4) + (request.maxTokens ?? 0) * request.n;
}

/** A bucket refilled at `perMinute` × TARGET_SHARE; it may go below zero (a debt paid before the next take). */
class TokenBucket {
  private level: number;
  private updatedAt: number;
  perMs: number;
  capacity: number;

  constructor(
    perMinute: number,
    private readonly now: () => number,
  ) {
    this.perMs = (perMinute * TARGET_SHARE) / 60_000;
    this.capacity = Math.max(1, this.perMs * BURST_SECONDS * 1000);
    this.level = this.capacity;
    this.updatedAt = now();
  }

  setRate(perMinute: number): void {
    this.refill();
    this.perMs = (perMinute * TARGET_SHARE) / 60_000;
    this.capacity = Math.max(1, this.perMs * BURST_SECONDS * 1000);
    this.level = Math.min(this.level, this.capacity);
  }

  /** ms until `amount` can be taken (0: now); an amount over the capacity waits for a full bucket. */
  waitMs(amount: number): number {
    this.refill();
    const needed = Math.min(amount, this.capacity) - this.level;
    return needed <= 0 ? 0 : Math.ceil(needed / this.perMs);
  }

  take(amount: number): void {
    this.refill();
    this.level -= amount;
  }

  /** No more than `most` left now; below zero it owes what refills in `-most / perMs` ms. */
  cap(most: number): void {
    this.refill();
    this.level = Math.min(this.level, most);
  }

  private refill(): void {
    const now = this.now();
    this.level = Math.min(this.capacity, this.level + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }
}

export class RatePacer {
  private requests?: TokenBucket;
  private tokens?: TokenBucket;

  constructor(
    private readonly given: RateLimits,
    private readonly now: () => number = Date.now,
  ) {
    if (given.rpm) this.requests = new TokenBucket(given.rpm, now);
    if (given.tpm) this.tokens = new TokenBucket(given.tpm, now);
  }

  /** ms until a request of `tokens` may go (0: now). */
  waitMs(tokens: number): number {
    return Math.max(this.requests?.waitMs(1) ?? 0, this.tokens?.waitMs(tokens) ?? 0);
  }

  /** Charges a request that goes now. */
  take(tokens: number): void {
    this.requests?.take(1);
    this.tokens?.take(tokens);
  }

  /**
   * An answer's headers: a stated limit is adopted where no flag gives one (a flag is the user's word for the
   * rate); a remaining allowance smaller than the bucket's caps it, and none left waits until its reset.
   */
  observe(state: RateLimitState): void {
    this.requests = this.adopt(this.requests, this.given.rpm, state.limitRequests);
    this.tokens = this.adopt(this.tokens, this.given.tpm, state.limitTokens);
    this.tighten(this.requests, state.remainingRequests, state.resetRequestsMs);
    this.tighten(this.tokens, state.remainingTokens, state.resetTokensMs);
  }

  /** A 429: nothing more goes until `pauseMs` have refilled what the server still counts. */
  throttled(pauseMs: number): void {
    for (const bucket of [this.requests, this.tokens]) bucket?.cap(-pauseMs * bucket.perMs);
  }

  private adopt(bucket: TokenBucket | undefined, given: number | undefined, stated: number | undefined) {
    if (given !== undefined || stated === undefined || stated <= 0) return bucket;
    if (!bucket) return new TokenBucket(stated, this.now);
    bucket.setRate(stated);
    return bucket;
  }

  private tighten(bucket: TokenBucket | undefined, remaining?: number, resetMs?: number): void {
    if (!bucket || remaining === undefined) return;
    if (remaining >= 1 || resetMs === undefined) bucket.cap(remaining);
    else bucket.cap(-resetMs * bucket.perMs);
  }
}
