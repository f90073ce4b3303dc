// What an inference server's /metrics says about its load: requests running and waiting, KV cache use,
// preemptions, under vLLM's names or SGLang's; undefined for a server that has none of them.
import { parsePrometheusText } from './prometheus-text.js';

export interface ServerLoad {
  /** Engine requests in the batch (the `n` samples of a request count one each). */
  running: number;
  /** Engine requests queued behind the batch. */
  waiting: number;
  /** KV cache in use, 0 to 1, when reported. */
  cacheUsage?: number;
  /** Preemptions since the server started, when reported. */
  preemptions?: number;
}

/** Metric names by field, vLLM's (V1, then older) before SGLang's. */
const NAMES = {
  running: ['vllm:num_requests_running', 'sglang:num_running_reqs'],
  waiting: ['vllm:num_requests_waiting', 'sglang:num_queue_reqs'],
  cacheUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'sglang:token_usage'],
  preemptions: ['vllm:num_preemptions_total'],
} as const;

function first(samples: Map<string, number[]>, names: readonly string[]): number[] | undefined {
  for (const name of names) {
    const values = samples.get(name);
    if (values) return values.filter(Number.isFinite);
  }
  return undefined;
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/**
 * The load in a /metrics body: counts summed over engines (labels), the fullest engine's KV cache;
 * undefined unless the body is Prometheus text with the running and waiting counts.
 */
export function serverLoadFrom(text: string): ServerLoad | undefined {
  const samples = parsePrometheusText(text);
  if (!samples) return undefined;
  const running = first(samples, NAMES.running);
  const waiting = first(samples, NAMES.waiting);
  if (!running || !waiting) return undefined;
  const cache = first(samples, NAMES.cacheUsage);
  const preemptions = first(samples, NAMES.preemptions);
  return {
    running: sum(running),
    waiting: sum(waiting),
    ...(cache?.length ? { cacheUsage: Math.max(...cache) } : {}),
    ...(preemptions ? { preemptions: sum(preemptions) } : {}),
  };
}
