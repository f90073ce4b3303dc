// `megadocs pack` (and `generate`) with Hub inputs, ranks + merge and --push-to, the built CLI against the
// loopback Hub server (HF_ENDPOINT/HF_TOKEN in the child's environment, as a user sets them).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zstdDecompress } from '../lib/codecs/zstd.js';
import { iterateMdsSamples } from '../lib/sinks/mds-reader.js';
import { runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

let server: HubServer;
let llm: OpenAiTestServer;
beforeAll(async () => {
  server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 2) });
  llm = await startOpenAiServer({});
});
afterAll(async () => {
  await server.close();
  await llm.close();
});

const FINEWEB = 'hf://datasets/HuggingFaceFW/fineweb/data/**/*.parquet';
const PACK = ['--seq-len', '512', '--workers', '1', '--quiet', '--json'];

async function tokenHex(dir: string): Promise<string[]> {
  const samples: string[] = [];
  for await (const sample of iterateMdsSamples(dir)) {
    const tokens = sample.tokens as Uint32Array;
    samples.push(Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength).toString('hex'));
  }
  return samples;
}

describe('megadocs pack with the Hub', () => {
  it('packs hf:// Parquet shards exactly like the same files read locally', async () => {
    const remote = await tempDir();
    const local = await tempDir();
    const env = { HF_ENDPOINT: server.url };
    const fromHub = await runCli(['pack', FINEWEB, '--out', remote, ...PACK], env);
    expect(fromHub.stderr).toBe('');
    expect(fromHub.code).toBe(0);
    const file = join(SHARED_DATA, 'fineweb-300.parquet');
    expect((await runCli(['pack', file, file, '--out', local, ...PACK])).code).toBe(0);
    expect(JSON.parse(fromHub.stdout.toString()).documents).toBe(600);
    expect(await tokenHex(remote)).toEqual(await tokenHex(local));
  });

  it('splits the shards among 2 ranks; merge joins them into one valid dataset with every document', async () => {
    const out = await tempDir();
    const env = { HF_ENDPOINT: server.url };
    const documents: number[] = [];
    for (const rank of [0, 1]) {
      const result = await runCli(
        ['pack', FINEWEB, '--out', out, '--rank', String(rank), '--world-size', '2', ...PACK],
        env,
      );
      expect(result.code).toBe(0);
      documents.push(JSON.parse(result.stdout.toString()).documents);
    }
    expect(documents).toEqual([300, 300]);
    expect((await runCli(['merge', out, '--quiet'])).code).toBe(0);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    expect(
      index.shards.map((shard: { zip_data: { basename: string } }) => shard.zip_data.basename.split('/')[0]),
    ).toEqual(['rank-00000', 'rank-00001']);
    const inspect = await runCli(['inspect', out, '--json']);
    expect(inspect.code).toBe(0);
  });

  it('--push-to uploads every shard and the index to the Hub dataset', async () => {
    const out = await tempDir();
    const input = join(SHARED_DATA, 'wikipedia-2349.jsonl.zst');
    const args = [
      'pack',
      input,
      '--out',
      out,
      '--shard-size',
      '256KiB',
      '--push-to',
      'hf://datasets/megadocs/pushed-pack',
      ...PACK,
    ];
    const result = await runCli(args, { HF_ENDPOINT: server.url, HF_TOKEN: TEST_TOKEN });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    expect(index.shards.length).toBeGreaterThan(1);
    const names = [
      'index.json',
      ...index.shards.map((shard: { zip_data: { basename: string } }) => shard.zip_data.basename),
    ];
    for (const name of names) {
      const pushed = await server.fileBytes('megadocs/pushed-pack', 'main', name);
      expect(pushed, name).toBeDefined();
      expect(Buffer.compare(pushed!, await readFile(join(out, name))), name).toBe(0);
    }
  });
});

describe('megadocs generate with the Hub', () => {
  it('reads a private hf:// dataset with HF_TOKEN and generates for every document', async () => {
    const out = await tempDir();
    const input = 'hf://datasets/megadocs/private-fineweb/data/*.parquet';
    const args = [
      'generate',
      input,
      '--out',
      out,
      '--llm',
      llm.url,
      '--model',
      'm',
      '--generations',
      '1',
      '--quiet',
    ];
    const refused = await runCli([...args, '--json'], { HF_ENDPOINT: server.url });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('HF_TOKEN');
    const result = await runCli([...args, '--overwrite', '--json'], {
      HF_ENDPOINT: server.url,
      HF_TOKEN: TEST_TOKEN,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    const lines = zstdDecompress(await readFile(join(out, index.shards[0].basename)))
      .toString('utf8')
      .trim()
      .split('\n');
    expect(lines.length).toBe(JSON.parse(result.stdout.toString()).generations);
    expect(lines.length).toBeGreaterThanOrEqual(300);
  });
});

describe('megadocs run with --push-to', () => {
  it('uploads both streams, their indexes and mixture.json', async () => {
    const dir = await tempDir();
    const input = join(dir, 'docs.jsonl');
    const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).split('\n').slice(0, 20);
    await writeFile(input, `${lines.join('\n')}\n`);
    const out = join(dir, 'out');
    const args = [
      'run',
      input,
      '--out',
      out,
      '--llm',
      llm.url,
      '--model',
      'm',
      '--generations',
      '2',
      '--seq-len',
      '256',
    ];
    const push = [
      '--streams',
      'separate',
      '--shard-size',
      '64KiB',
      '--push-to',
      'hf://datasets/megadocs/pushed-run',
    ];
    const result = await runCli([...args, ...push, '--quiet'], {
      HF_ENDPOINT: server.url,
      HF_TOKEN: TEST_TOKEN,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const names = ['mixture.json'];
    for (const stream of ['real', 'synthetic']) {
      const index = JSON.parse(await readFile(join(out, stream, 'index.json'), 'utf8'));
      names.push(`${stream}/index.json`);
      for (const shard of index.shards) names.push(`${stream}/${shard.zip_data.basename}`);
    }
    expect(names.length).toBeGreaterThan(4);
    for (const name of names) {
      const pushed = await server.fileBytes('megadocs/pushed-run', 'main', name);
      expect(pushed, name).toBeDefined();
      expect(Buffer.compare(pushed!, await readFile(join(out, name))), name).toBe(0);
    }
  });
});
