// The in-flight limit of one endpoint from its server's load (vLLM or SGLang /metrics): keep the batch full and
// the queue a few requests long; double while nothing waits, back off when the KV cache preempts.
import type { ServerLoad } from './server-load.js';

/**
 * The queue aimed at, in decode steps of the batch's finishing rate: what finishes in that time is replaced at once
 * (and a sequence waits about that long). Before any answer tells the length of a sequence: 2 requests.
 */
const QUEUE_TARGET_STEPS = 1;
const QUEUE_TARGET_REQUESTS = 2;
/** KV cache use above which the limit does not grow (the next sequences would preempt others). */
const CACHE_FULL = 0.95;
/** The share of the queue's distance from its target corrected per sample (a full step overshoots). */
const GAIN = 0.5;
/** The limit kept after preemptions rose. */
const PREEMPTION_BACKOFF = 0.85;

/** What the rule remembers between samples. */
export interface LoadRuleMemory {
  /** The most engine requests seen running while others waited: the server's batch limit as learned. */
  batchLimit?: number;
  preemptions?: number;
  /** The queue at the last sample: a queue is one when it is there at two samples running. */
  waiting?: number;
}

export interface LoadSample {
  limit: number;
  /** Our requests on the endpoint now, and the engine requests they make (their `n` summed). */
  inFlight: number;
  inFlightSequences: number;
  /** Our requests filled the limit since the last sample (otherwise demand, not the server, bounds them). */
  saturated: boolean;
  /** Completion tokens of a sequence, on average, when answers told. */
  sequenceTokens?: number;
  load: ServerLoad;
}

/** Our requests not seen by the server (on their way, or answered and on their way back) that still let it grow. */
const TRANSIT_SHARE = 0.25;

/** The next limit (unclamped) after one /metrics sample. */
export function limitFromLoad(sample: LoadSample, memory: LoadRuleMemory): number {
  const { limit, inFlight, saturated, load } = sample;
  const sequencesPerRequest = inFlight > 0 ? Math.max(1, sample.inFlightSequences / inFlight) : 1;
  const preempted =
    load.preemptions !== undefined &&
    memory.preemptions !== undefined &&
    load.preemptions > memory.preemptions;
  memory.preemptions = load.preemptions ?? memory.preemptions;
  // Requests that just arrived wait for the next scheduler step: only a queue seen twice running counts.
  const waiting = Math.min(load.waiting, memory.waiting ?? 0);
  memory.waiting = load.waiting;
  if (waiting > 0) memory.batchLimit = Math.max(memory.batchLimit ?? 0, load.running);
  // Of ours in flight, those the server holds now (it counts other clients' too: at most ours).
  const atServer = Math.min(inFlight, (load.running + load.waiting) / sequencesPerRequest);
  if (preempted) {
    // The KV cache, not max_num_seqs, bounds this batch: what ran when it preempted is not room to grow back into.
    const kept = Math.max(1, Math.floor(load.running * PREEMPTION_BACKOFF));
    memory.batchLimit = Math.min(memory.batchLimit ?? kept, kept);
    return Math.min(limit, Math.floor(atServer * PREEMPTION_BACKOFF));
  }
  const queueTarget = sample.sequenceTokens
    ? (QUEUE_TARGET_STEPS * Math.max(1, load.running)) / sample.sequenceTokens
    : QUEUE_TARGET_REQUESTS * sequencesPerRequest;
  const excess = waiting - queueTarget;
  // Requests already sent cannot be called back: count down from those the server holds, not from the limit.
  if (excess > 0) return Math.min(limit, Math.floor(atServer - (GAIN * excess) / sequencesPerRequest));
  // Our requests are not reaching the server (this client is the bottleneck): more would only wait here.
  const inTransit = inFlight - atServer > Math.max(QUEUE_TARGET_REQUESTS, TRANSIT_SHARE * inFlight);
  // A queue seen once: no growth, and no cut before the next sample confirms it.
  const queueNow = load.waiting > queueTarget;
  if (!saturated || inTransit || queueNow || (load.cacheUsage ?? 0) >= CACHE_FULL) return limit;
  // Nothing waits and the batch limit is not known yet: the server takes all we send.
  if (load.waiting === 0 && memory.batchLimit === undefined) return limit * 2;
  const batchRoom = Math.max(0, (memory.batchLimit ?? 0) - load.running);
  return limit + Math.max(1, Math.round((GAIN * (batchRoom - excess)) / sequencesPerRequest));
}
