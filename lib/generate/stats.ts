// Counters of a generation run, as one plain object the engine and the backend update and the CLI
// redraws from: requests, retries and failures by cause, filters, tokens per recipe, latency quantiles.
import type { ConcurrencyFigures } from '../backends/endpoint-control.js';
import { createLongDocsCounters, type LongDocsCounters } from './long-docs.js';

/** Request latencies in logarithmic buckets (5% wide): quantiles in constant memory. */
export interface LatencyHistogram {
  counts: number[];
  total: number;
}

export interface GenerateStats {
  startedAt: number;
  /** The model that serves the requests (--model, the one the server lists, or the local model). */
  model?: string;
  /** Its context in tokens (vLLM's max_model_len, the local model's context, or --context-size). */
  contextSize?: number;
  /** Documents emitted downstream (with or without generations). */
  documents: number;
  /** Documents that lost generations to requests that failed for good (weighed against `--max-failures`). */
  failedDocuments: number;
  /** Documents that produced nothing because a whole stage failed (e.g. MAGA's JSON), by reason. */
  skipped: Record<string, number>;
  generations: number;
  requests: {
    /** HTTP attempts, retries included. */
    sent: number;
    /** Requests answered by the backend in this run. */
    completed: number;
    /** Requests answered from the journal of an earlier run (not sent). */
    replayed: number;
    /** Requests that failed for good (rejected by the server, or out of retries). */
    failed: number;
    inFlight: number;
  };
  retries: Record<string, number>;
  failures: Record<string, number>;
  /** The first message of each failure cause (the server's own words, e.g. a context length). */
  failureExamples: Record<string, string>;
  /** Generations dropped by post-processing, by filter. */
  filtered: Record<string, number>;
  /** Generations that ended with `finish_reason: length`. */
  truncated: number;
  /** Inputs cut to `--max-input-tokens`. */
  inputsCut: number;
  /** Documents over the input budget: segmented (and their segments, lines cut), truncated, skipped, retried. */
  longDocs: LongDocsCounters;
  /** Server-reported tokens per recipe (replayed requests included). */
  tokens: Record<string, { prompt: number; completion: number }>;
  latency: LatencyHistogram;
  /** How the servers' in-flight limits were set, and per endpoint: in flight, limits chosen, queue, tokens/s. */
  concurrency?: ConcurrencyFigures;
}

export function createGenerateStats(now = Date.now()): GenerateStats {
  return {
    startedAt: now,
    documents: 0,
    failedDocuments: 0,
    skipped: {},
    generations: 0,
    requests: { sent: 0, completed: 0, replayed: 0, failed: 0, inFlight: 0 },
    retries: {},
    failures: {},
    failureExamples: {},
    filtered: {},
    truncated: 0,
    inputsCut: 0,
    longDocs: createLongDocsCounters(),
    tokens: {},
    latency: { counts: [], total: 0 },
  };
}

export function increment(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

const BUCKET_BASE_MS = 0.1;
const BUCKET_GROWTH = Math.log(1.05);

export function recordLatency(histogram: LatencyHistogram, ms: number): void {
  const bucket = Math.max(
    0,
    Math.ceil(Math.log(Math.max(ms, BUCKET_BASE_MS) / BUCKET_BASE_MS) / BUCKET_GROWTH),
  );
  while (histogram.counts.length <= bucket) histogram.counts.push(0);
  histogram.counts[bucket]! += 1;
  histogram.total += 1;
}

/** The latency (ms, within 5%) below which a fraction `q` of requests finished; NaN when none did. */
export function latencyQuantile(histogram: LatencyHistogram, q: number): number {
  if (histogram.total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * histogram.total));
  let seen = 0;
  for (let bucket = 0; bucket < histogram.counts.length; bucket += 1) {
    seen += histogram.counts[bucket]!;
    if (seen >= rank) return BUCKET_BASE_MS * Math.exp(bucket * BUCKET_GROWTH);
  }
  return Number.NaN;
}

/** Tokens over all recipes. */
export function totalTokens(stats: GenerateStats): { prompt: number; completion: number } {
  let prompt = 0;
  let completion = 0;
  for (const usage of Object.values(stats.tokens)) {
    prompt += usage.prompt;
    completion += usage.completion;
  }
  return { prompt, completion };
}

/** The stats as plain JSON (megadocs.json, `--json`): latency as quantiles, rates over the wall time. */
export function statsSnapshot(stats: GenerateStats, now = Date.now()): Record<string, unknown> {
  const wallSeconds = (now - stats.startedAt) / 1000;
  const { latency, startedAt: _startedAt, ...counters } = stats;
  const round = (value: number) => (Number.isFinite(value) ? Math.round(value * 10) / 10 : null);
  return {
    ...counters,
    requests: { ...stats.requests },
    longDocs: { ...stats.longDocs },
    wallSeconds: round(wallSeconds),
    requestsPerSecond: round(wallSeconds > 0 ? stats.requests.completed / wallSeconds : 0),
    latencyMs: { p50: round(latencyQuantile(latency, 0.5)), p99: round(latencyQuantile(latency, 0.99)) },
    latencyHistogram: latencyBuckets(latency),
  };
}

/** The recorded latency histogram for megadocs.json (the report draws it): bucket b ends at firstMs x growth^b. */
export interface LatencyBuckets {
  firstMs: number;
  growth: number;
  counts: number[];
}

export function latencyBuckets(histogram: LatencyHistogram): LatencyBuckets {
  return { firstMs: BUCKET_BASE_MS, growth: Math.exp(BUCKET_GROWTH), counts: [...histogram.counts] };
}
