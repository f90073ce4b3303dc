// Runs the OpenAI-compatible test server as its own process (for benchmarks): prints {"url": ...} on one
// stdout line once listening, serves until SIGTERM/SIGINT or stdin closes, then prints {"served", CPU}.
// Usage: --latency-ms L [--port P] [--answer-repeat K] [--fault-rate R --fault-status S [--retry-after SECONDS]
// [--fault-seed N]]
// (a share R of all tries answered with HTTP S, reproducibly: see randomFaults in openai-server.ts).
import { parseArgs } from 'node:util';
import { type RandomFaults, startOpenAiServer } from './openai-server.js';

const { values } = parseArgs({
  options: {
    'latency-ms': { type: 'string', default: '0' },
    port: { type: 'string', default: '0' },
    'answer-repeat': { type: 'string', default: '1' },
    'fault-rate': { type: 'string', default: '0' },
    'fault-status': { type: 'string', default: '503' },
    'retry-after': { type: 'string' },
    'fault-seed': { type: 'string', default: '0' },
  },
});
const randomFaults: RandomFaults | undefined =
  Number(values['fault-rate']) > 0
    ? {
        rate: Number(values['fault-rate']),
        fault: { kind: 'status', status: Number(values['fault-status']), retryAfter: values['retry-after'] },
        seed: Number(values['fault-seed']),
      }
    : undefined;
const server = await startOpenAiServer({
  latency: Number(values['latency-ms']),
  port: Number(values.port),
  randomFaults,
  answerRepeat: Number(values['answer-repeat']),
});
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);

const cpu = process.cpuUsage();
const stop = () => {
  const used = process.cpuUsage(cpu);
  const served = server.stats.completed;
  const cpuMicrosPerRequest = served ? (used.user + used.system) / served : 0;
  process.stdout.write(`${JSON.stringify({ served, cpuMicrosPerRequest })}\n`);
  void server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
