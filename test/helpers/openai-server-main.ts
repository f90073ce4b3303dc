// Runs the OpenAI-compatible test server as its own process (for benchmarks): prints {"url": ...} on one
// stdout line once listening, serves until SIGTERM/SIGINT or stdin closes, then prints {"served", CPU}.
// Usage: --latency-ms L [--port P].
import { parseArgs } from 'node:util';
import { startOpenAiServer } from './openai-server.js';

const { values } = parseArgs({
  options: { 'latency-ms': { type: 'string', default: '0' }, port: { type: 'string', default: '0' } },
});
const server = await startOpenAiServer({ latency: Number(values['latency-ms']), port: Number(values.port) });
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
