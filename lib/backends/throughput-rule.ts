// The in-flight limit of one endpoint whose server has no load metrics, from our own answers: a hill climb on
// throughput (grow while tokens/s rise with the limit; go back when the latency grew without them), per interval.

/** Growth per interval: doubling until the first step that bought nothing, then 10% probes. */
const SLOW_START_GROWTH = 2;
const PROBE_GROWTH = 1.1;
/** A step up must raise throughput by at least this share of its own size to count as a gain. */
const WORTHWHILE = 0.3;

interface Step {
  limit: number;
  tokensPerS: number;
}

export class ThroughputRule {
  /** The last limit measured, and its throughput. */
  private base?: Step;
  private slowStart = true;

  /** The next limit after an interval in which the endpoint answered `tokensPerS` at `limit`. */
  next(limit: number, saturated: boolean, tokensPerS: number): number {
    // Below the limit, demand rather than the server decided the throughput: nothing learned.
    if (!saturated || tokensPerS <= 0) return limit;
    const base = this.base;
    if (!base || limit <= base.limit) {
      this.base = { limit, tokensPerS };
      return this.grow(limit);
    }
    const expected = 1 + WORTHWHILE * (limit / base.limit - 1);
    if (tokensPerS >= base.tokensPerS * expected) {
      this.base = { limit, tokensPerS };
      return this.grow(limit);
    }
    // More in flight only lengthened the queue: back to the last good limit, probing upward from there.
    this.slowStart = false;
    this.base = { limit: base.limit, tokensPerS: Math.max(base.tokensPerS, tokensPerS) };
    return base.limit;
  }

  /** A 429 or 503: what was measured before no longer holds, and no doubling after it. */
  overloaded(): void {
    this.base = undefined;
    this.slowStart = false;
  }

  private grow(limit: number): number {
    return Math.max(limit + 1, Math.ceil(limit * (this.slowStart ? SLOW_START_GROWTH : PROBE_GROWTH)));
  }
}
