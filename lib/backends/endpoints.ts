// Spreads requests over several endpoints (the healthy one with the most room under its limit gets the next), takes
// out an endpoint that refuses connections or keeps failing, lets one probe request bring it back, and waits while none answers.
import type { OpenAiEndpoint } from './client.js';
import type { EndpointControl } from './endpoint-control.js';
import { DEFAULT_SERVER_WAIT, type ServerWaitOptions, waitForServer } from './server-wait.js';

export interface HealthPolicy {
  /** Consecutive faults (5xx, resets, timeouts) that take an endpoint out; one it cannot connect to is out at once. */
  faultsToEject: number;
  /** First pause before a probe; doubles while probes fail, up to maxCooldownMs. */
  cooldownMs: number;
  maxCooldownMs: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  faultsToEject: 3,
  cooldownMs: 1_000,
  maxCooldownMs: 30_000,
};

/** How an attempt on an endpoint went, as far as the endpoint's health is concerned. */
export type AttemptHealth = 'ok' | 'fault' | 'refused' | 'neutral';

interface EndpointState {
  endpoint: OpenAiEndpoint;
  /** Its in-flight limit, rate limits and requests in flight. */
  control: EndpointControl;
  faults: number;
  /** Out of rotation until this time (ms); 0 when in rotation. */
  downUntil: number;
  cooldownMs: number;
  /** A single probe request is out: nobody else uses the endpoint until it answers. */
  probing: boolean;
  /** It has answered (a probe or an attempt), and has not refused a connection since. */
  answering: boolean;
}

/** A use of one endpoint for one attempt; `finish` reports how it went and the tokens answered (call it once). */
export interface EndpointLease {
  endpoint: OpenAiEndpoint;
  control: EndpointControl;
  finish(health: AttemptHealth, completionTokens?: number): void;
}

/** What an attempt takes of an endpoint: one request of `n` samples, `tokens` as rate limits count them. */
export interface AttemptCost {
  n: number;
  tokens: number;
}

export class EndpointSet {
  private readonly states: EndpointState[];
  private rotation = 0;
  /** The wait for a server in progress, shared by every request that needs one. */
  private waiting?: Promise<boolean>;
  /** Leases waiting for room, woken (one per freed slot, all on a change of limits or health) to look again. */
  private readonly sleepers = new Set<() => void>();

  constructor(
    endpoints: Array<{ endpoint: OpenAiEndpoint; control: EndpointControl }>,
    private readonly policy: HealthPolicy = DEFAULT_HEALTH_POLICY,
    private readonly wait: ServerWaitOptions = DEFAULT_SERVER_WAIT,
    private readonly now: () => number = Date.now,
  ) {
    this.states = endpoints.map(({ endpoint, control }) => ({
      endpoint,
      control,
      faults: 0,
      downUntil: 0,
      cooldownMs: policy.cooldownMs,
      probing: false,
      answering: false,
    }));
  }

  /** Some endpoint answers: false before the first answer, and once every endpoint refuses connections. */
  get answering(): boolean {
    return this.states.some((state) => state.answering);
  }

  /**
   * Returns at once while some endpoint answers; otherwise probes them all (one wait for every caller) until one
   * does, and puts it back in rotation. True when it had to wait (every endpoint failed a probe first).
   * Throws after the wait's limit (--wait-for-server) without an answer.
   */
  untilAnswering(signal?: AbortSignal): Promise<boolean> {
    if (this.answering) return Promise.resolve(false);
    this.waiting ??= waitForServer(
      this.states.map((state) => state.endpoint),
      this.wait,
      signal,
    )
      .then(({ index, waited }) => {
        const state = this.states[index]!;
        this.restore(state);
        state.answering = true;
        return waited;
      })
      .finally(() => {
        this.waiting = undefined;
      });
    return this.waiting;
  }

  /** Endpoints out of rotation right now (for progress and the summary). */
  get down(): number {
    return this.states.filter((state) => state.downUntil > 0).length;
  }

  /** The sum of the in-flight limits of the endpoints in rotation (Infinity when they are fixed together). */
  get totalLimit(): number {
    return this.states.reduce((sum, state) => sum + (state.downUntil > 0 ? 0 : state.control.limit), 0);
  }

  /** The endpoints' figures (progress line, summary, megadocs.json). */
  get figures() {
    return this.states.map((state) => state.control.figures);
  }

  /**
   * The endpoint for the next attempt; waits while every endpoint is out (and none is due for a probe), full
   * (its in-flight limit reached) or held back by its rate limits.
   */
  async lease(cost: AttemptCost, signal?: AbortSignal): Promise<EndpointLease> {
    while (true) {
      // An endpoint due for a probe gets the next request even while others are healthy.
      const state = this.pickProbe() ?? this.pickHealthy(cost);
      if (state) {
        state.control.sent(cost.n, cost.tokens);
        let finished = false;
        return {
          endpoint: state.endpoint,
          control: state.control,
          finish: (health, completionTokens) => {
            if (finished) return;
            finished = true;
            state.control.done(cost.n, completionTokens);
            this.record(state, health);
            this.wake(false);
          },
        };
      }
      // At most a cooldown at a time: a wait for the server may put an endpoint back before its time.
      await this.nap(
        Math.max(1, Math.min(this.nextChange(cost) - this.now(), this.policy.cooldownMs)),
        signal,
      );
    }
  }

  /** Limits moved (or health changed): every waiting lease looks again. */
  limitsChanged(): void {
    this.wake(true);
  }

  async close(): Promise<void> {
    await Promise.all(this.states.map((state) => state.endpoint.close()));
  }

  async destroy(reason: Error): Promise<void> {
    await Promise.all(this.states.map((state) => state.endpoint.destroy(reason)));
  }

  /** The healthy endpoint with room and the smallest share of its limit in use (then the fewest in flight). */
  private pickHealthy(cost: AttemptCost): EndpointState | undefined {
    let best: EndpointState | undefined;
    let bestShare = Number.POSITIVE_INFINITY;
    const count = this.states.length;
    for (let step = 0; step < count; step += 1) {
      const state = this.states[(this.rotation + step) % count]!;
      const { control } = state;
      if (state.downUntil > 0 || control.inFlight >= control.limit || control.waitMs(cost.tokens) > 0)
        continue;
      const share = control.inFlight / control.limit;
      if (!best || share < bestShare || (share === bestShare && control.inFlight < best.control.inFlight)) {
        best = state;
        bestShare = share;
      }
    }
    this.rotation = (this.rotation + 1) % count;
    return best;
  }

  /** When a lease that found no endpoint should look again without being woken: a probe due, rate limits refilled. */
  private nextChange(cost: AttemptCost): number {
    const now = this.now();
    let next = Number.POSITIVE_INFINITY;
    for (const state of this.states) {
      if (state.downUntil > 0) next = Math.min(next, state.downUntil);
      else if (state.control.inFlight < state.control.limit)
        next = Math.min(next, now + state.control.waitMs(cost.tokens));
    }
    return next;
  }

  /** Sleeps `ms` or until woken; rejects with the signal's reason when it aborts. */
  private nap(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        signal?.removeEventListener('abort', aborted);
      };
      const done = () => {
        leave();
        resolve();
      };
      // Not through done(): a promise resolved first ignores the reject, and the lease would nap again at once,
      // for ever, never yielding to the event loop (a Ctrl-C'd generate spun at full CPU and never exited).
      const aborted = () => {
        leave();
        reject(signal!.reason);
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
      if (signal?.aborted) aborted();
      else signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  private wake(all: boolean): void {
    if (!all) {
      this.sleepers.values().next().value?.();
      return;
    }
    for (const sleeper of [...this.sleepers]) sleeper();
  }

  private pickProbe(): EndpointState | undefined {
    const now = this.now();
    const due = this.states.find((state) => state.downUntil > 0 && state.downUntil <= now && !state.probing);
    if (due) due.probing = true;
    return due;
  }

  private record(state: EndpointState, health: AttemptHealth): void {
    state.answering = health !== 'refused';
    if (health === 'neutral') {
      if (state.probing) this.restore(state);
      return;
    }
    if (health === 'ok') {
      this.restore(state);
      return;
    }
    state.faults += 1;
    const wasProbe = state.probing;
    state.probing = false;
    if (wasProbe) {
      state.cooldownMs = Math.min(this.policy.maxCooldownMs, state.cooldownMs * 2);
      state.downUntil = this.now() + state.cooldownMs;
    } else if (state.downUntil === 0 && (health === 'refused' || state.faults >= this.policy.faultsToEject)) {
      state.downUntil = this.now() + state.cooldownMs;
    }
  }

  private restore(state: EndpointState): void {
    if (state.downUntil > 0) this.wake(true);
    state.faults = 0;
    state.downUntil = 0;
    state.probing = false;
    state.cooldownMs = this.policy.cooldownMs;
  }
}
