// `megadocs generate` with `--concurrency auto` (the default for servers) against the simulated vLLM server: the
// summary and megadocs.json record the limits chosen, and the output bytes equal those of a fixed --concurrency.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { startVllmSim, type VllmSim } from './helpers/vllm-sim.js';

let input: string;
let sim: VllmSim;

beforeAll(async () => {
  sim = await startVllmSim({ maxNumSeqs: 16, timeScale: 0.1 });
  // 120 documents: enough for the limit to move, few enough to keep the test short.
  const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).split('\n').slice(0, 120);
  input = join(await tempDir(), 'fineweb-120.jsonl');
  await writeFile(input, `${lines.join('\n')}\n`);
});

afterAll(async () => {
  await sim.close();
});

async function generate(out: string, ...extra: string[]) {
  const result = await runCli([
    'generate',
    input,
    '--out',
    out,
    '--llm',
    sim.url,
    '--generations',
    '1',
    '--max-tokens',
    '40',
    '--quiet',
    '--json',
    ...extra,
  ]);
  expect(result.stderr.toString()).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout.toString()) as Record<string, unknown>;
}

async function shards(out: string): Promise<Buffer> {
  const names = (await readdir(out)).filter((name) => name.startsWith('shard.')).sort();
  return Buffer.concat(await Promise.all(names.map((name) => readFile(join(out, name)))));
}

describe('megadocs generate --concurrency auto', () => {
  it('records the limits chosen in --json and megadocs.json, and writes the bytes a fixed concurrency writes', async () => {
    const auto = await tempDir();
    const summary = await generate(auto);
    const concurrency = summary.concurrency as {
      mode: string;
      max: number;
      endpoints: Array<{
        url: string;
        signals: string;
        limits: Array<[number, number]>;
        final: number;
        max: number;
      }>;
    };
    expect(concurrency).toMatchObject({
      mode: 'auto',
      max: 1024,
      endpoints: [{ url: sim.url, signals: 'metrics' }],
    });
    const [endpoint] = concurrency.endpoints;
    expect(endpoint!.limits[0]).toEqual([0, 8]);
    expect(endpoint!.max).toBeGreaterThanOrEqual(16);
    expect(endpoint!.limits.at(-1)![1]).toBe(endpoint!.final);
    const manifest = JSON.parse(await readFile(join(auto, 'megadocs.json'), 'utf8')) as {
      stats: { concurrency: unknown };
    };
    expect(manifest.stats.concurrency).toEqual(concurrency);

    const fixed = await tempDir();
    expect(await generate(fixed, '--concurrency', '5')).toMatchObject({
      concurrency: { mode: 'fixed', limit: 5 },
    });
    expect((await shards(fixed)).equals(await shards(auto))).toBe(true);
  });

  it('refuses a --concurrency that is neither a number nor auto, naming the flag', async () => {
    const result = await runCli([
      'generate',
      input,
      '--out',
      await tempDir(),
      '--llm',
      sim.url,
      '--concurrency',
      'lots',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.toString()).toContain(
      '(--concurrency): expected a whole number of at least 1, or "auto"',
    );
  });
});
