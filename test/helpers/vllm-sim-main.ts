// Runs the simulated vLLM server (vllm-sim.ts) as its own process, for benchmarks and rehearsals: prints
// {"url", "pid"} on one stdout line once listening, serves until SIGTERM/SIGINT or stdin closes, then prints its stats.
// Usage: node --import tsx test/helpers/vllm-sim-main.ts [--options JSON] [--max-num-seqs N] [--kv-cache-tokens N]
//   [--time-scale F] [--decode-base-ms MS] [--decode-per-seq-ms MS] [--prefill-tokens-per-s N] [--max-model-len N]
//   [--output-tokens N | MIN-MAX] [--model NAME] [--rpm N] [--tpm N] [--window sliding|fixed] [--no-metrics] [--port P]
// --options takes any VllmSimOptions as JSON (outputTokens as a number or [min, max]); the flags override it.
import { parseArgs } from 'node:util';
import { startVllmSim, type VllmSimOptions } from './vllm-sim.js';

const { values } = parseArgs({
  options: {
    options: { type: 'string', default: '{}' },
    'max-num-seqs': { type: 'string' },
    'kv-cache-tokens': { type: 'string' },
    'time-scale': { type: 'string' },
    'decode-base-ms': { type: 'string' },
    'decode-per-seq-ms': { type: 'string' },
    'prefill-tokens-per-s': { type: 'string' },
    'max-model-len': { type: 'string' },
    'output-tokens': { type: 'string' },
    model: { type: 'string' },
    rpm: { type: 'string' },
    tpm: { type: 'string' },
    window: { type: 'string' },
    'no-metrics': { type: 'boolean', default: false },
    port: { type: 'string' },
  },
});

const options = JSON.parse(values.options) as Partial<VllmSimOptions>;
const NUMERIC: ReadonlyArray<[keyof typeof values, keyof VllmSimOptions]> = [
  ['max-num-seqs', 'maxNumSeqs'],
  ['kv-cache-tokens', 'kvCacheTokens'],
  ['time-scale', 'timeScale'],
  ['decode-base-ms', 'decodeBaseMs'],
  ['decode-per-seq-ms', 'decodePerSeqMs'],
  ['prefill-tokens-per-s', 'prefillTokensPerS'],
  ['max-model-len', 'maxModelLen'],
  ['port', 'port'],
];
for (const [flag, key] of NUMERIC) {
  const value = values[flag];
  if (typeof value === 'string') Object.assign(options, { [key]: Number(value) });
}
const outputTokens = values['output-tokens'];
if (outputTokens !== undefined) {
  const range = /^(\d+)-(\d+)$/.exec(outputTokens);
  options.outputTokens = range ? [Number(range[1]), Number(range[2])] : Number(outputTokens);
}
if (values.model !== undefined) options.model = values.model;
if (values['no-metrics']) options.metrics = false;
if (values.rpm !== undefined || values.tpm !== undefined || values.window !== undefined) {
  options.hosted = {
    ...options.hosted,
    ...(values.rpm !== undefined && { rpm: Number(values.rpm) }),
    ...(values.tpm !== undefined && { tpm: Number(values.tpm) }),
    ...(values.window !== undefined && { window: values.window as 'sliding' | 'fixed' }),
  };
}

const sim = await startVllmSim(options);
process.stdout.write(`${JSON.stringify({ url: sim.url, pid: process.pid })}\n`);

const cpu = process.cpuUsage();
const stop = () => {
  const used = process.cpuUsage(cpu);
  const { answered, generatedTokens, preemptions, rateLimited } = sim.stats();
  const cpuMicrosPerRequest = answered ? (used.user + used.system) / answered : 0;
  process.stdout.write(
    `${JSON.stringify({ answered, generatedTokens, preemptions, rateLimited, cpuMicrosPerRequest })}\n`,
  );
  void sim.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
