// Histograms for the report: a list of values (a bounded scan) cut into equal bins, linear or logarithmic,
// and the run's recorded latency buckets (lib/generate/stats.ts, 5% wide) regrouped into a few drawable bins.
import type { LatencyBuckets } from '../generate/stats.js';

/** `counts[i]` values fell in [edges[i], edges[i + 1]); the last bin includes its upper edge. */
export interface Bins {
  edges: number[];
  counts: number[];
  /** Bins of equal width on a log scale (values spread over more than a factor of 20). */
  log: boolean;
  total: number;
}

const DEFAULT_BINS = 24;

export function binValues(values: readonly number[], bins = DEFAULT_BINS): Bins {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return { edges: [], counts: [], log: false, total: 0 };
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const value of finite) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  if (min === max) return { edges: [min, max], counts: [finite.length], log: false, total: finite.length };
  const log = min > 0 && max / min > 20;
  const scale = log ? Math.log : (value: number) => value;
  const low = scale(min);
  const width = (scale(max) - low) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const value of finite) counts[Math.min(bins - 1, Math.floor((scale(value) - low) / width))]! += 1;
  const edges = Array.from({ length: bins + 1 }, (_v, i) =>
    log ? Math.exp(low + i * width) : low + i * width,
  );
  return { edges, counts, log, total: finite.length };
}

/** The recorded latency buckets, from the first to the last one used, merged into at most `bins` bins. */
export function latencyBins(buckets: LatencyBuckets, bins = DEFAULT_BINS): Bins {
  const { counts, firstMs, growth } = buckets;
  const first = counts.findIndex((count) => count > 0);
  if (first < 0) return { edges: [], counts: [], log: true, total: 0 };
  let last = counts.length - 1;
  while (counts[last] === 0) last -= 1;
  const per = Math.ceil((last - first + 1) / bins);
  const edges = [first === 0 ? 0 : firstMs * growth ** (first - 1)];
  const merged: number[] = [];
  for (let start = first; start <= last; start += per) {
    const end = Math.min(start + per, last + 1);
    merged.push(counts.slice(start, end).reduce((sum, count) => sum + count, 0));
    edges.push(firstMs * growth ** (end - 1));
  }
  return { edges, counts: merged, log: true, total: merged.reduce((sum, count) => sum + count, 0) };
}
