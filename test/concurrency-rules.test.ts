// The pieces of `--concurrency auto` on their own: the Prometheus text reader, the load read from vLLM's and SGLang's
// /metrics, the load rule, the throughput rule and the controller's clamps, history and overload halving.
import { describe, expect, it } from 'vitest';
import { ConcurrencyController } from '../lib/backends/concurrency-controller.js';
import { type LoadRuleMemory, limitFromLoad } from '../lib/backends/load-rule.js';
import { parsePrometheusText } from '../lib/backends/prometheus-text.js';
import { serverLoadFrom } from '../lib/backends/server-load.js';
import { ThroughputRule } from '../lib/backends/throughput-rule.js';

const VLLM_METRICS = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 30.0
vllm:num_requests_running{engine="1",model_name="m"} 34.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 2.0
vllm:num_requests_waiting{engine="1",model_name="m"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
vllm:num_preemptions_total{engine="0",model_name="a \\"quoted\\" {name}"} 7 1700000000000
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 12
`;

describe('/metrics', () => {
  it('reads Prometheus text: values per label set, quoted labels with braces, timestamps, +Inf', () => {
    const samples = parsePrometheusText(VLLM_METRICS)!;
    expect(samples.get('vllm:num_requests_running')).toEqual([30, 34]);
    expect(samples.get('vllm:num_preemptions_total')).toEqual([7]);
    expect(samples.get('vllm:e2e_request_latency_seconds_bucket')).toEqual([12]);
    expect(parsePrometheusText('<html>not found</html>')).toBeUndefined();
    expect(parsePrometheusText('# only comments\n')).toBeUndefined();
  });

  it("sums vLLM's engines, keeps the fullest KV cache; reads SGLang's names; nothing without the counts", () => {
    expect(serverLoadFrom(VLLM_METRICS)).toEqual({
      running: 64,
      waiting: 3,
      cacheUsage: 0.75,
      preemptions: 7,
    });
    expect(
      serverLoadFrom(
        'sglang:num_running_reqs{model_name="m"} 12\nsglang:num_queue_reqs{model_name="m"} 4\nsglang:token_usage{model_name="m"} 0.4\n',
      ),
    ).toEqual({ running: 12, waiting: 4, cacheUsage: 0.4 });
    expect(serverLoadFrom('process_cpu_seconds_total 3.5\n')).toBeUndefined();
  });
});

describe('the load rule', () => {
  const base = { limit: 16, inFlight: 16, inFlightSequences: 16, saturated: true };

  it('doubles while nothing waits and the batch limit is unknown', () => {
    expect(limitFromLoad({ ...base, load: { running: 16, waiting: 0 } }, {})).toBe(32);
  });

  it('learns the batch limit from a queue seen twice running and counts down from what the server holds', () => {
    const memory: LoadRuleMemory = {};
    // Once: requests that just arrived, waiting for the next step.
    const sample = { ...base, limit: 64, inFlight: 64, inFlightSequences: 64 };
    expect(limitFromLoad({ ...sample, load: { running: 32, waiting: 32 } }, memory)).toBe(64);
    expect(memory.batchLimit).toBeUndefined();
    const next = limitFromLoad(
      { ...base, limit: 64, inFlight: 64, inFlightSequences: 64, load: { running: 32, waiting: 32 } },
      memory,
    );
    expect(memory.batchLimit).toBe(32);
    expect(next).toBeLessThan(64);
    expect(next).toBeGreaterThan(32);
  });

  it('counts `n` samples as engine requests', () => {
    // 8 requests of n=4 are 32 engine requests; 16 wait where 2 requests (8) are aimed at: 2 requests too many,
    // half of it corrected per sample. Read as n=1 the same queue would be 14 requests too many.
    const load = { running: 16, waiting: 16 };
    expect(
      limitFromLoad({ ...base, limit: 8, inFlight: 8, inFlightSequences: 32, load }, { waiting: 16 }),
    ).toBe(7);
  });

  it('backs off when preemptions rise, holds while the KV cache is full or demand is short', () => {
    const memory: LoadRuleMemory = { preemptions: 3, batchLimit: 64 };
    expect(limitFromLoad({ ...base, load: { running: 16, waiting: 0, preemptions: 5 } }, memory)).toBe(13);
    expect(
      limitFromLoad({ ...base, load: { running: 16, waiting: 0, cacheUsage: 0.99, preemptions: 5 } }, memory),
    ).toBe(16);
    expect(
      limitFromLoad({ ...base, saturated: false, load: { running: 16, waiting: 0, preemptions: 5 } }, memory),
    ).toBe(16);
  });

  it('turns sequences into requests by what ours hold at the server: fewer than n once samples finish', () => {
    // 64 requests of n=4 hold 180 sequences (some samples done): 2.8 each. Aiming at the batch of 256 and a queue
    // of 2 requests' samples (8) takes 94 requests: half the way there. Counted as 4 each, it would be 66.
    const memory: LoadRuleMemory = { batchLimit: 256, waiting: 0, running: 180 };
    const load = { running: 180, waiting: 0 };
    expect(limitFromLoad({ ...base, limit: 64, inFlight: 64, inFlightSequences: 256, load }, memory)).toBe(
      79,
    );
  });

  it('does not take a batch still admitting a burst for full, and probes past a limit learned too low', () => {
    const burst: LoadRuleMemory = { waiting: 100, running: 100 };
    const admitting = { running: 300, waiting: 200 };
    const sample = { ...base, limit: 128, inFlight: 128, inFlightSequences: 512 };
    expect(limitFromLoad({ ...sample, load: admitting }, burst)).toBe(128);
    expect(burst.batchLimit).toBeUndefined();
    // Full at the learned 64 with nothing waiting at two samples: the limit may be higher; look 10% further.
    const low: LoadRuleMemory = { batchLimit: 64, waiting: 0, running: 64 };
    const full = { running: 64, waiting: 0, cacheUsage: 0.3 };
    expect(limitFromLoad({ ...base, inFlightSequences: 64, load: full }, low)).toBeGreaterThan(16);
    expect(low.batchLimit).toBe(71);
  });

  it('does not grow while our requests are not reaching the server (the client is the bottleneck)', () => {
    expect(
      limitFromLoad(
        { ...base, limit: 256, inFlight: 256, inFlightSequences: 256, load: { running: 10, waiting: 0 } },
        {},
      ),
    ).toBe(256);
  });
});

describe('the throughput rule', () => {
  it('doubles while throughput follows, goes back when it stops, then probes by 10%', () => {
    const rule = new ThroughputRule();
    expect(rule.next(8, true, 800)).toBe(16);
    expect(rule.next(16, true, 1600)).toBe(32);
    // Twice the requests, hardly more tokens: back to 16.
    expect(rule.next(32, true, 1700)).toBe(16);
    expect(rule.next(16, true, 1600)).toBe(18);
    expect(rule.next(18, false, 100)).toBe(18);
  });
});

describe('ConcurrencyController', () => {
  it('clamps to --max-concurrency, halves once per burst of overloads, and records the limits chosen', () => {
    let now = 0;
    const controller = new ConcurrencyController({ max: 20, overloadHoldMs: 100, now: () => now });
    controller.noteInFlight(8);
    now = 1000;
    controller.observeLoad({ running: 8, waiting: 0 }, 8, 8);
    controller.noteInFlight(16);
    now = 2000;
    controller.observeLoad({ running: 16, waiting: 0 }, 16, 16);
    expect(controller.limit).toBe(20);
    controller.overloaded();
    controller.overloaded();
    expect(controller.limit).toBe(10);
    now = 2200;
    controller.overloaded();
    expect(controller.limit).toBe(5);
    expect(controller.chosen).toEqual({
      limits: [
        [0, 8],
        [1, 16],
        [2, 20],
        [2, 10],
        [2.2, 5],
      ],
      final: 5,
      max: 20,
    });
  });
});
