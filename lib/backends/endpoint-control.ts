// What decides how much one endpoint gets: its in-flight limit (fixed, or moved by a ConcurrencyController from
// /metrics scraped every interval, else from our throughput), its rate limits, and the figures the progress shows.
import type { OpenAiEndpoint } from './client.js';
import { ConcurrencyController, type LimitHistory } from './concurrency-controller.js';
import { type RateLimits, RatePacer } from './rate-limit.js';
import type { RateLimitState } from './ratelimit-headers.js';
import { serverLoadFrom } from './server-load.js';

/** How the limits are set: `--concurrency auto` (per endpoint, capped by `max`) or fixed over all endpoints. */
export type ConcurrencyMode = { mode: 'auto'; max: number } | { mode: 'fixed'; limit: number };

export interface EndpointControlOptions {
  concurrency: ConcurrencyMode;
  rateLimits: RateLimits;
  /** ms between /metrics samples and throughput measurements (default DEFAULT_CONTROL_INTERVAL_MS). */
  intervalMs?: number;
}

export const DEFAULT_CONTROL_INTERVAL_MS = 500;
/** Weight of each answer in the average length of a sequence. */
const SMOOTHING = 0.05;

/**
 * One endpoint as the progress line, the summary and megadocs.json show it; under auto, with the limits chosen
 * over time (`limits`: [seconds since start, limit] at each change, thinned out; `final`: the limit now; `max`).
 */
export interface EndpointFigures extends Partial<LimitHistory> {
  url: string;
  /** Where the limit comes from: the server's `metrics`, our `throughput`, or `fixed` (--concurrency N). */
  signals: 'metrics' | 'throughput' | 'fixed' | 'pending';
  inFlight: number;
  /** Engine requests queued at the server (the last /metrics sample). */
  queue?: number;
  /** Completion tokens per second of our answers over the last interval. */
  tokensPerS: number;
}

/** `concurrency` in the stats (megadocs.json, `--json`): how limits were set, and each endpoint's figures. */
export type ConcurrencyFigures = ({ mode: 'auto'; max: number } | { mode: 'fixed'; limit: number }) & {
  endpoints: EndpointFigures[];
};

export class EndpointControl {
  inFlight = 0;
  private inFlightSequences = 0;
  private readonly controller?: ConcurrencyController;
  private readonly pacer: RatePacer;
  private readonly intervalMs: number;
  private timer?: NodeJS.Timeout;
  private tokens = 0;
  /** Completion tokens of one sequence (a choice), a moving average over answers; 0 before any. */
  private sequenceTokens = 0;
  private measuredAt = Date.now();
  /** Whether /metrics is worth asking (false once it answered something else). */
  private scraping = true;
  private stopped = false;
  readonly figures: EndpointFigures;

  constructor(
    private readonly endpoint: OpenAiEndpoint,
    options: EndpointControlOptions,
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_CONTROL_INTERVAL_MS;
    this.pacer = new RatePacer(options.rateLimits);
    const auto = options.concurrency.mode === 'auto';
    if (options.concurrency.mode === 'auto') {
      this.controller = new ConcurrencyController({
        max: options.concurrency.max,
        overloadHoldMs: this.intervalMs,
      });
    }
    this.figures = {
      url: endpoint.name,
      signals: auto ? 'pending' : 'fixed',
      inFlight: 0,
      tokensPerS: 0,
    };
    this.sync();
  }

  /** Requests this endpoint may have in flight now (Infinity: only the global --concurrency bounds it). */
  get limit(): number {
    return this.controller?.limit ?? Number.POSITIVE_INFINITY;
  }

  /** ms until the rate limits let a request of `tokens` go (0: now). */
  waitMs(tokens: number): number {
    return this.pacer.waitMs(tokens);
  }

  /** A request of `n` samples and `tokens` (estimated) goes to this endpoint. */
  sent(n: number, tokens: number): void {
    this.pacer.take(tokens);
    this.inFlight += 1;
    this.inFlightSequences += n;
    this.figures.inFlight = this.inFlight;
    this.controller?.noteInFlight(this.inFlight);
  }

  /** The request is done; `completionTokens` when it was answered. */
  done(n: number, completionTokens = 0): void {
    this.inFlight -= 1;
    this.inFlightSequences -= n;
    this.figures.inFlight = this.inFlight;
    this.tokens += completionTokens;
    if (completionTokens > 0) {
      const perSequence = completionTokens / n;
      this.sequenceTokens += (perSequence - this.sequenceTokens) * (this.sequenceTokens ? SMOOTHING : 1);
    }
  }

  /** An answer's x-ratelimit headers. */
  rateLimited(state: RateLimitState): void {
    this.pacer.observe(state);
  }

  /** A 429 or 503 (Retry-After in ms when it said): fewer in flight, and a pause before the next request. */
  overloaded(status: number, retryAfterMs?: number): void {
    this.controller?.overloaded();
    this.sync();
    if (status === 429) this.pacer.throttled(retryAfterMs ?? this.intervalMs);
  }

  /** Starts the interval: /metrics samples (auto), throughput and tokens/s. */
  start(onChange: () => void): void {
    const tick = async () => {
      await this.sample();
      if (this.stopped) return;
      onChange();
      this.timer = setTimeout(tick, this.intervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.stopped = true;
  }

  private async sample(): Promise<void> {
    const now = Date.now();
    const tokensPerS = (this.tokens * 1000) / Math.max(1, now - this.measuredAt);
    this.tokens = 0;
    this.measuredAt = now;
    this.figures.tokensPerS = Math.round(tokensPerS);
    if (!this.controller) return;
    const load = this.scraping ? await this.scrape() : undefined;
    if (load) {
      this.figures.signals = 'metrics';
      this.figures.queue = load.waiting;
      this.controller.observeLoad(
        load,
        this.inFlight,
        this.inFlightSequences,
        this.sequenceTokens || undefined,
      );
    } else if (!this.scraping) {
      this.figures.signals = 'throughput';
      this.controller.observeThroughput(tokensPerS, this.inFlight);
    }
    this.sync();
  }

  /** The server's load; a server that answers /metrics with something else is not asked again. */
  private async scrape() {
    const answer = await this.endpoint.fetchRoot('/metrics');
    if ('error' in answer) return undefined;
    const load = answer.status < 300 ? serverLoadFrom(answer.text) : undefined;
    if (!load) this.scraping = false;
    return load;
  }

  private sync(): void {
    if (!this.controller) return;
    const { limits, final, max } = this.controller.chosen;
    Object.assign(this.figures, { limits, final, max });
  }
}
