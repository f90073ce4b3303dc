// Waits for an LLM server that does not answer (still loading a model, restarting, never started): probes every
// endpoint with backoff until one answers, says what it waits for every 30 s, and gives up after --wait-for-server.
import { MegadocsError } from '../errors.js';
import { type RetryPolicy, retryDelay, sleep } from '../retry.js';
import type { ProbeOutcome } from './client.js';

/** An endpoint as the wait sees it: its name (the base URL) and a probe. */
export interface ProbeTarget {
  readonly name: string;
  probe(): Promise<ProbeOutcome>;
}

export interface ServerWaitOptions {
  /** The longest wait for an answer, in ms (`--wait-for-server`); 0 probes each endpoint once. */
  waitMs: number;
  /** How often a wait that goes on is reported; the first report comes once every endpoint has failed a probe. */
  reportEveryMs: number;
  /** Told what is waited for ("waiting for URL: connection refused, 35 s of 600"), and when a server answers. */
  onWaiting?: (message: string) => void;
}

export const DEFAULT_SERVER_WAIT: ServerWaitOptions = { waitMs: 600_000, reportEveryMs: 30_000 };

/** Pauses between two probes of one endpoint: short at first (a server about to listen), then every few seconds. */
const PROBE_BACKOFF: RetryPolicy = {
  maxRetries: Number.POSITIVE_INFINITY,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
};

/** Which target answered, and whether the wait was reported (every target failed a probe before it). */
export interface ServerAnswer {
  index: number;
  waited: boolean;
}

/**
 * Probes every target until one answers. Throws a MegadocsError after `waitMs` without an answer, or the
 * signal's reason when it aborts.
 */
export async function waitForServer(
  targets: readonly ProbeTarget[],
  options: ServerWaitOptions,
  signal?: AbortSignal,
): Promise<ServerAnswer> {
  const started = Date.now();
  const deadline = started + options.waitMs;
  const reasons: Array<string | undefined> = targets.map(() => undefined);
  const seconds = (ms: number) => Math.floor(ms / 1000);
  const status = () =>
    `waiting for ${describe(targets, reasons)}, ${seconds(Date.now() - started)} s of ${options.waitMs / 1000}`;
  let waited = false;
  const report = () => {
    waited = true;
    options.onWaiting?.(status());
  };
  // Ends the other probe loops once one target answers.
  const answered = new AbortController();
  const stop = signal ? AbortSignal.any([signal, answered.signal]) : answered.signal;
  // The last probe's outcome says it at the deadline.
  const timer = setInterval(() => {
    if (waited && Date.now() < deadline) report();
  }, options.reportEveryMs);

  const probeUntilAnswer = async (target: ProbeTarget, index: number): Promise<number> => {
    for (let probe = 0; ; probe += 1) {
      const outcome = await target.probe();
      stop.throwIfAborted();
      if (outcome.answers) return index;
      reasons[index] = outcome.reason;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new MegadocsError('LLM', `gave up ${status()}`, {
          hint:
            'Start the server or check --llm; --wait-for-server sets how many seconds to wait ' +
            '(a server loading a large model can take minutes)',
        });
      }
      if (!waited && reasons.every((reason) => reason !== undefined)) report();
      await sleep(Math.min(left, retryDelay(probe, PROBE_BACKOFF)), stop);
    }
  };

  try {
    const index = await Promise.any(targets.map(probeUntilAnswer));
    if (waited) {
      options.onWaiting?.(`${targets[index]!.name} answers, after ${seconds(Date.now() - started)} s`);
    }
    return { index, waited };
  } catch (error) {
    signal?.throwIfAborted();
    throw error instanceof AggregateError ? error.errors[0] : error;
  } finally {
    clearInterval(timer);
    answered.abort();
  }
}

/** `URL: reason` for one target; `URL (reason), URL (reason)` for several. */
function describe(targets: readonly ProbeTarget[], reasons: ReadonlyArray<string | undefined>): string {
  const reasonOf = (index: number) => reasons[index] ?? 'no answer yet';
  if (targets.length === 1) return `${targets[0]!.name}: ${reasonOf(0)}`;
  return targets.map((target, index) => `${target.name} (${reasonOf(index)})`).join(', ');
}
