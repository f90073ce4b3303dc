// `megadocs generate` as a user runs it (the built CLI against the loopback server): the jsonl.zst records,
// the API key kept out of every file, refusals, a custom recipe, and kill -9 mid-run then rerun.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zstdDecompress } from '../lib/codecs/zstd.js';
import { REPO_ROOT, runCli, SHARED_DATA, startCli, tempDir, waitCli } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const API_KEY = 'sk-test-7f3a9c1e5b2d4086';
const INPUT = join(SHARED_DATA, 'fineweb-300.jsonl');
let llm: OpenAiTestServer;

beforeAll(async () => {
  llm = await startOpenAiServer({ apiKey: API_KEY });
});

afterAll(async () => {
  await llm.close();
});

function generateArgs(out: string, ...extra: string[]): string[] {
  return ['generate', INPUT, '--out', out, '--llm', llm.url, '--model', 'test-model', '--quiet', ...extra];
}

/** The decompressed bytes of all shards, in shard order. */
async function shardBytes(out: string): Promise<Buffer> {
  const names = (await readdir(out)).filter((name) => /^shard\.\d{5}\.jsonl\.zst$/.test(name)).sort();
  expect(names.length).toBeGreaterThan(0);
  return Buffer.concat(
    await Promise.all(names.map(async (name) => zstdDecompress(await readFile(join(out, name))))),
  );
}

async function records(out: string): Promise<Array<Record<string, unknown>>> {
  return (await shardBytes(out))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function allFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if ((await stat(path)).isDirectory()) found.push(...(await allFiles(path)));
    else found.push(path);
  }
  return found;
}

describe('megadocs generate', () => {
  it('writes one record per generation in input order, and never writes the API key', async () => {
    const out = await tempDir();
    const result = await runCli(
      generateArgs(
        out,
        '--generations',
        '2',
        '--styles',
        'wiki,qa',
        '--n-per-request',
        '1',
        '--concurrency',
        '16',
        '--json',
      ),
      { OPENAI_API_KEY: API_KEY },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout.toString()) as Record<string, unknown>;
    expect(summary).toMatchObject({ documents: 300, generations: 600 });
    const written = await records(out);
    expect(written).toHaveLength(600);
    const ids = (await readFile(INPUT, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    expect(written.map((record) => record.doc_id)).toEqual(ids.flatMap((id) => [id, id]));
    expect(Object.keys(written[1]!)).toEqual([
      'doc_id',
      'recipe',
      'style',
      'index',
      'text',
      'finish_reason',
      'usage',
      'model',
      'seed',
    ]);
    expect(written[1]).toMatchObject({
      recipe: 'rephrase',
      style: 'qa',
      index: 1,
      finish_reason: 'stop',
      model: 'test-model',
    });
    for (const file of await allFiles(out)) expect((await readFile(file)).includes(API_KEY)).toBe(false);
    const manifest = await readFile(join(out, 'megadocs.json'), 'utf8');
    expect(manifest).not.toContain(API_KEY);
    expect(JSON.parse(manifest)).toMatchObject({
      status: 'complete',
      options: { apiKeyEnv: 'OPENAI_API_KEY' },
    });
  });

  it('exits 0 on a rerun of a complete run without doing it again, refuses a run with other options', async () => {
    const out = await tempDir();
    const input = join(await tempDir(), 'small.jsonl');
    await writeFile(input, (await readFile(INPUT, 'utf8')).split('\n').slice(0, 10).join('\n'));
    const args = ['generate', input, '--out', out, '--llm', llm.url, '--model', 'test-model', '--quiet'];
    expect((await runCli(args, { OPENAI_API_KEY: API_KEY })).code).toBe(0);
    const again = await runCli(args, { OPENAI_API_KEY: API_KEY });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/is already complete.*--overwrite/);
    const other = await runCli([...args, '--seed', '5'], { OPENAI_API_KEY: API_KEY });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/different options/);
  });

  it('says which variable is missing when --api-key-env names an unset one, and when the key is refused', async () => {
    const out = await tempDir();
    const missing = await runCli(generateArgs(out, '--api-key-env', 'MEGADOCS_TEST_NO_SUCH_KEY'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/MEGADOCS_TEST_NO_SUCH_KEY is not set/);
    const refused = await runCli(generateArgs(await tempDir()), { OPENAI_API_KEY: 'sk-wrong' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refused the credentials/);
    expect(refused.stderr).not.toContain('sk-wrong');
  });

  it('runs a custom recipe file with its own name, sampling and token bounds', async () => {
    const out = await tempDir();
    const result = await runCli(
      generateArgs(
        out,
        '--recipe',
        resolve(REPO_ROOT, 'examples/recipe-custom.json'),
        '--max-input-tokens',
        '300',
        '--json',
      ),
      { OPENAI_API_KEY: API_KEY },
    );
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout.toString()) as {
      generations: number;
      inputsCut: number;
      filtered: Record<string, number>;
    };
    const written = await records(out);
    expect(written.length).toBe(summary.generations);
    expect(summary.generations + (summary.filtered.too_short ?? 0)).toBe(600);
    expect(summary.inputsCut).toBeGreaterThan(50);
    expect(new Set(written.map((record) => record.recipe))).toEqual(new Set(['lecture-notes']));
  });

  it('after kill -9 mid-run, a rerun sends only what was not journaled and writes identical shards', async () => {
    const args = (out: string) =>
      generateArgs(
        out,
        '--generations',
        '2',
        '--styles',
        'wiki,facts',
        '--n-per-request',
        '1',
        '--concurrency',
        '8',
      );
    llm.setLatency({ lognormal: { medianMs: 6, sigma: 0.5 } });
    try {
      const reference = await tempDir();
      expect((await runCli(args(reference), { OPENAI_API_KEY: API_KEY })).code).toBe(0);

      const out = await tempDir();
      llm.reset();
      const child = startCli(args(out), { OPENAI_API_KEY: API_KEY });
      const killed = waitCli(child);
      while (llm.stats.completed < 200) await new Promise((resolveWait) => setTimeout(resolveWait, 2));
      child.kill('SIGKILL');
      expect((await killed).signal).toBe('SIGKILL');
      const journal = await readFile(join(out, 'state', 'generate.journal.00000.jsonl'), 'utf8');
      const journaled = journal.split('\n').filter((line) => line.endsWith('}')).length - 1;
      expect(journaled).toBeGreaterThan(100);
      expect(journaled).toBeLessThan(600);

      llm.reset();
      const rerun = await runCli([...args(out), '--json'], { OPENAI_API_KEY: API_KEY });
      expect(rerun.code).toBe(0);
      // Every request the first run had journaled is replayed; each other one is sent exactly once.
      expect(llm.stats.received).toBe(600 - journaled);
      expect([...llm.stats.receivedBySeed.values()].every((count) => count === 1)).toBe(true);
      expect(JSON.parse(rerun.stdout.toString()).requests).toMatchObject({ replayed: journaled });
      expect(Buffer.compare(await shardBytes(out), await shardBytes(reference))).toBe(0);
    } finally {
      llm.setLatency(0);
    }
  });
});
