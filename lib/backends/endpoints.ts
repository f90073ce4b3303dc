// Spreads requests over several endpoints (the healthy one with the fewest in flight gets the next), takes out
// an endpoint that refuses connections or keeps failing, lets one probe request bring it back, and waits while none answers.
import { sleep } from '../retry.js';
import type { OpenAiEndpoint } from './client.js';
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
  inFlight: number;
  faults: number;
  /** Out of rotation until this time (ms); 0 when in rotation. */
  downUntil: number;
  cooldownMs: number;
  /** A single probe request is out: nobody else uses the endpoint until it answers. */
  probing: boolean;
  /** It has answered (a probe or an attempt), and has not refused a connection since. */
  answering: boolean;
}

/** A use of one endpoint for one attempt; `finish` reports how it went (call it once). */
export interface EndpointLease {
  endpoint: OpenAiEndpoint;
  finish(health: AttemptHealth): void;
}

export class EndpointSet {
  private readonly states: EndpointState[];
  private rotation = 0;
  /** The wait for a server in progress, shared by every request that needs one. */
  private waiting?: Promise<boolean>;

  constructor(
    endpoints: OpenAiEndpoint[],
    private readonly policy: HealthPolicy = DEFAULT_HEALTH_POLICY,
    private readonly wait: ServerWaitOptions = DEFAULT_SERVER_WAIT,
    private readonly now: () => number = Date.now,
  ) {
    this.states = endpoints.map((endpoint) => ({
      endpoint,
      inFlight: 0,
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

  /** The endpoint for the next attempt; waits while every endpoint is out and none is due for a probe. */
  async lease(signal?: AbortSignal): Promise<EndpointLease> {
    while (true) {
      // An endpoint due for a probe gets the next request even while others are healthy.
      const state = this.pickProbe() ?? this.pickHealthy();
      if (state) {
        state.inFlight += 1;
        let finished = false;
        return {
          endpoint: state.endpoint,
          finish: (health) => {
            if (finished) return;
            finished = true;
            state.inFlight -= 1;
            this.record(state, health);
          },
        };
      }
      // At most a cooldown at a time: a wait for the server may put an endpoint back before its time.
      const wake = Math.min(...this.states.map((candidate) => candidate.downUntil));
      await sleep(Math.max(1, Math.min(wake - this.now(), this.policy.cooldownMs)), signal);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.states.map((state) => state.endpoint.close()));
  }

  async destroy(reason: Error): Promise<void> {
    await Promise.all(this.states.map((state) => state.endpoint.destroy(reason)));
  }

  private pickHealthy(): EndpointState | undefined {
    let best: EndpointState | undefined;
    const count = this.states.length;
    for (let step = 0; step < count; step += 1) {
      const state = this.states[(this.rotation + step) % count]!;
      if (state.downUntil > 0) continue;
      if (!best || state.inFlight < best.inFlight) best = state;
    }
    this.rotation = (this.rotation + 1) % count;
    return best;
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
    state.faults = 0;
    state.downUntil = 0;
    state.probing = false;
    state.cooldownMs = this.policy.cooldownMs;
  }
}
