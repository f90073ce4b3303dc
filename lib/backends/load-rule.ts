// The in-flight limit of one endpoint from its server's load (vLLM or SGLang /metrics): keep the batch full and
// the queue about one decode step long; double while nothing waits, back off when the KV cache preempts.
// The server counts sequences (a request of `n` samples is n of them until its first samples finish), so the rule
// works in sequences and turns them into requests by what our requests hold at the server now.
import type { ServerLoad } from './server-load.js';

/**
 * The queue aimed at, in decode steps of the batch's finishing rate: what finishes in that time is replaced at once
 * (and a sequence waits about that long). Before any answer tells the length of a sequence: 2 requests.
 */
const QUEUE_TARGET_STEPS = 1;
const QUEUE_TARGET_REQUESTS = 2;
/** KV cache use above which the limit does not grow (the next sequences would preempt others). */
const CACHE_FULL = 0.95;
/** KV cache use above which a batch that is full at its learned limit is not probed for more room. */
const CACHE_BUSY = 0.8;
/** The share of the distance from the target corrected per sample (a full step overshoots). */
const GAIN = 0.5;
/** The limit kept after preemptions rose. */
const PREEMPTION_BACKOFF = 0.85;
/** How much room past the learned batch limit a full batch with nothing waiting is probed for. */
const BATCH_PROBE = 1.1;

/** What the rule remembers between samples. */
export interface LoadRuleMemory {
  /** The sequences seen running while a queue stood and the batch did not grow: the batch limit as learned. */
  batchLimit?: number;
  preemptions?: number;
  /** The queue and the batch at the last sample: a queue is one when it is there at two samples running. */
  waiting?: number;
  running?: number;
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
  const samplesPerRequest = inFlight > 0 ? Math.max(1, sample.inFlightSequences / inFlight) : 1;
  const preempted =
    load.preemptions !== undefined &&
    memory.preemptions !== undefined &&
    load.preemptions > memory.preemptions;
  memory.preemptions = load.preemptions ?? memory.preemptions;
  // Requests that just arrived wait for the next scheduler step: only a queue seen twice running counts, and
  // only while the batch stopped growing (a server still admitting, e.g. prefilling a burst, is not full).
  const waiting = Math.min(load.waiting, memory.waiting ?? 0);
  const batchGrew = memory.running !== undefined && load.running > memory.running;
  memory.waiting = load.waiting;
  memory.running = load.running;
  const live = load.running + load.waiting;
  // Sequences per request of ours at the server: n at first, fewer once some of a request's samples finished.
  const perRequest =
    inFlight > 0 ? Math.min(samplesPerRequest, Math.max(1, live / inFlight)) : samplesPerRequest;
  /** Our requests it takes to hold `sequences` at the server. */
  const requestsFor = (sequences: number) => sequences / perRequest;
  const base = Math.min(limit, inFlight);
  if (preempted) {
    // The KV cache, not max_num_seqs, bounds this batch: what ran when it preempted is not room to grow back into.
    const kept = Math.max(1, Math.floor(load.running * PREEMPTION_BACKOFF));
    memory.batchLimit = Math.min(memory.batchLimit ?? kept, kept);
    return Math.min(limit, Math.floor(base * PREEMPTION_BACKOFF));
  }
  const queueTarget = sample.sequenceTokens
    ? (QUEUE_TARGET_STEPS * Math.max(1, load.running)) / sample.sequenceTokens
    : QUEUE_TARGET_REQUESTS * samplesPerRequest;
  const queued = waiting > queueTarget && !batchGrew;
  // What runs while a queue stands is the limit now (a probe past it, or a KV cache that fills, moves it).
  if (queued) memory.batchLimit = load.running;
  /** The sequences aimed at: a full batch and the queue target. */
  const target = (memory.batchLimit ?? load.running) + queueTarget;
  // Requests already sent cannot be called back: count down from those in flight, not from the limit.
  if (queued) return Math.min(limit, Math.floor(base - GAIN * (base - requestsFor(target))));
  // Fewer sequences at the server than our requests: many are not reaching it (this client is the bottleneck).
  const inTransit = inFlight - live > Math.max(QUEUE_TARGET_REQUESTS, TRANSIT_SHARE * inFlight);
  // A queue seen once: no growth, and no cut before the next sample confirms it.
  const queueNow = load.waiting > queueTarget;
  const cache = load.cacheUsage ?? 0;
  if (!saturated || inTransit || queueNow || cache >= CACHE_FULL) return limit;
  // Nothing waits and the batch limit is not known yet: the server takes all we send.
  if (memory.batchLimit === undefined) return limit * 2;
  // Full at the learned limit with nothing waiting: the limit was learned low (a burst being admitted); look further.
  if (load.running >= memory.batchLimit && load.waiting === 0 && waiting === 0 && cache < CACHE_BUSY) {
    memory.batchLimit = Math.ceil(memory.batchLimit * BATCH_PROBE);
  }
  return limit + Math.max(1, Math.round(GAIN * (requestsFor(target) - base)));
}
