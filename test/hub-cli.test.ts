// The `pull` and `merge` commands, run through commander in-process against the loopback Hub, with
// HF_ENDPOINT/HF_TOKEN taken from the environment the way a user sets them.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { register as registerMerge } from '../bin/commands/merge.js';
import { register as registerPull } from '../bin/commands/pull.js';
import { SHARED_DATA, sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';
import { readTextMds, writeTextMds } from './helpers/mds-text.js';

let server: HubServer;
const savedEnv = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_TOKEN: process.env.HF_TOKEN };

beforeAll(async () => {
  server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 2) });
});
afterAll(() => server.close());
afterEach(() => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  vi.restoreAllMocks();
});

/** Runs `megadocs ARGS` in-process; returns what it printed on stdout. */
async function megadocs(args: string[], env: { HF_TOKEN?: string } = {}): Promise<string> {
  process.env.HF_ENDPOINT = server.url;
  if (env.HF_TOKEN) process.env.HF_TOKEN = env.HF_TOKEN;
  else delete process.env.HF_TOKEN;
  const program = new Command('megadocs').exitOverride();
  registerPull(program);
  registerMerge(program);
  let stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'megadocs', ...args]);
  } finally {
    vi.restoreAllMocks();
  }
  return stdout;
}

describe('megadocs pull', () => {
  it('mirrors a glob, then skips everything on a second run (--json summaries)', async () => {
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-cli-pull-'));
    const source = 'hf://datasets/megadocs/private-fineweb/data/*.parquet';
    const first = JSON.parse(
      await megadocs(['pull', source, dir, '--json', '-j', '2'], { HF_TOKEN: TEST_TOKEN }),
    );
    expect(first).toMatchObject({ source, dir, files: 1, downloaded: 1, skipped: 0 });
    const pulled = await fs.readFile(path.join(dir, 'data/train-00000.parquet'));
    const original = await fs.readFile(path.join(SHARED_DATA, 'fineweb-300.parquet'));
    expect(createHash('sha256').update(pulled).digest('hex')).toBe(
      createHash('sha256').update(original).digest('hex'),
    );
    const second = JSON.parse(await megadocs(['pull', source, dir, '--json'], { HF_TOKEN: TEST_TOKEN }));
    expect(second).toMatchObject({ files: 1, downloaded: 0, skipped: 1, bytes: 0 });
  });

  it('pulls a --config/--split from refs/convert/parquet', async () => {
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-cli-pull-'));
    const args = [
      'pull',
      'hf://datasets/fka/awesome-chatgpt-prompts',
      dir,
      '--config',
      'default',
      '--split',
      'train',
      '--json',
    ];
    expect(JSON.parse(await megadocs(args))).toMatchObject({ files: 1, downloaded: 1 });
    await fs.stat(path.join(dir, 'default/train/0000.parquet'));
  });

  it('without HF_TOKEN, a private dataset fails with a message that says to set it', async () => {
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-cli-pull-'));
    await expect(megadocs(['pull', 'hf://datasets/megadocs/private-fineweb', dir])).rejects.toThrow(
      /Set HF_TOKEN/,
    );
  });
});

describe('megadocs merge', () => {
  it('writes OUT/index.json over the ranks and pushes it with --push-to', async () => {
    const out = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-cli-merge-'));
    await writeTextMds(path.join(out, 'rank-00000'), ['one', 'two'], 1);
    await writeTextMds(path.join(out, 'rank-00001'), ['three'], 1);
    const printed = await megadocs(['merge', out, '--json', '--push-to', 'hf://datasets/me/merged/dataset'], {
      HF_TOKEN: TEST_TOKEN,
    });
    expect(JSON.parse(printed)).toMatchObject({
      ranks: 2,
      shards: 3,
      samples: 3,
      pushed: 'hf://datasets/me/merged/dataset',
    });
    expect((await readTextMds(out)).sort()).toEqual(['one', 'three', 'two']);
    const remote = await server.fileBytes('me/merged', 'main', 'dataset/index.json');
    expect(remote?.toString()).toBe(await fs.readFile(path.join(out, 'index.json'), 'utf8'));
  });
});
