// One endpoint's in-flight limit under `--concurrency auto`: moved by the server's load (load-rule.ts) or, without
// metrics, by our own throughput (throughput-rule.ts); halved on 429/503; kept between 1 and --max-concurrency.
import { type LoadRuleMemory, limitFromLoad } from './load-rule.js';
import type { ServerLoad } from './server-load.js';
import { ThroughputRule } from './throughput-rule.js';

/** The limit an endpoint starts at before its server has said anything. */
export const AUTO_START_CONCURRENCY = 8;
/** The cap of `auto` when --max-concurrency is not given. */
export const DEFAULT_MAX_CONCURRENCY = 1024;
/** Points of the limit's history kept (older ones are thinned out, every other one dropped, when it fills). */
const HISTORY_POINTS = 128;

export interface ControllerOptions {
  /** The cap (--max-concurrency). */
  max: number;
  start?: number;
  /** No second decrease for an overload within this many ms of the last (one burst of 429s halves once). */
  overloadHoldMs: number;
  now?: () => number;
}

/** The limits chosen over time: `[seconds since start, limit]` at each change (thinned out), the last and the top. */
export interface LimitHistory {
  limits: Array<[number, number]>;
  final: number;
  max: number;
}

export class ConcurrencyController {
  private current: number;
  private readonly memory: LoadRuleMemory = {};
  private readonly throughput = new ThroughputRule();
  private readonly startedAt: number;
  private readonly now: () => number;
  private lastOverload = Number.NEGATIVE_INFINITY;
  /** The most requests in flight since the last sample. */
  private peakInFlight = 0;
  private readonly history: LimitHistory;

  constructor(private readonly options: ControllerOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.current = this.clamp(options.start ?? AUTO_START_CONCURRENCY);
    this.history = { limits: [[0, this.current]], final: this.current, max: this.current };
  }

  get limit(): number {
    return this.current;
  }

  /** The history so far (a live object: megadocs.json and the progress line read it). */
  get chosen(): LimitHistory {
    return this.history;
  }

  /** Requests in flight on the endpoint changed to `count`. */
  noteInFlight(count: number): void {
    if (count > this.peakInFlight) this.peakInFlight = count;
  }

  /** A /metrics sample; `inFlightSequences` counts our requests' `n`, `sequenceTokens` the mean answer's tokens. */
  observeLoad(load: ServerLoad, inFlight: number, inFlightSequences: number, sequenceTokens?: number): void {
    const saturated = this.saturated(inFlight);
    this.set(
      limitFromLoad(
        { limit: this.current, inFlight, inFlightSequences, saturated, load, sequenceTokens },
        this.memory,
      ),
    );
  }

  /** An interval's throughput of our own answers (servers without metrics). */
  observeThroughput(tokensPerS: number, inFlight: number): void {
    this.set(this.throughput.next(this.current, this.saturated(inFlight), tokensPerS));
  }

  /** A 429 or 503: the server says it is over its capacity. */
  overloaded(): void {
    const now = this.now();
    if (now - this.lastOverload < this.options.overloadHoldMs) return;
    this.lastOverload = now;
    this.throughput.overloaded();
    this.set(Math.floor(this.current / 2));
  }

  private saturated(inFlight: number): boolean {
    const saturated = this.peakInFlight >= this.current;
    this.peakInFlight = inFlight;
    return saturated;
  }

  private clamp(limit: number): number {
    return Math.max(1, Math.min(this.options.max, Math.round(limit)));
  }

  private set(limit: number): void {
    const next = this.clamp(limit);
    if (next === this.current) return;
    this.current = next;
    const { history } = this;
    history.limits.push([Math.round((this.now() - this.startedAt) / 100) / 10, next]);
    if (history.limits.length > HISTORY_POINTS)
      history.limits = history.limits.filter((_, index) => index % 2 === 0);
    history.final = next;
    history.max = Math.max(history.max, next);
  }
}
