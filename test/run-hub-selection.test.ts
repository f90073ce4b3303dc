// `megadocs run` picks a Hub dataset's subset and split (`--subset`, `--split`, as `pack` and `generate` do, where
// `--config` stays an alias): against the loopback Hub and OpenAI-compatible servers; both are in the run identity.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './helpers/cli.js';
import { SHARED_DATA, sharedDataRepos } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

let hub: HubServer;
let llm: OpenAiTestServer;

beforeAll(async () => {
  hub = await startHubServer({ repos: sharedDataRepos(SHARED_DATA) });
  llm = await startOpenAiServer();
});
afterAll(async () => {
  await Promise.all([hub.close(), llm.close()]);
});

const run = (out: string, ...selection: string[]) => [
  'run',
  'hf://datasets/HuggingFaceFW/fineweb',
  ...selection,
  '--out',
  out,
  '--llm',
  llm.url,
  '--model',
  'test-model',
  '--generations',
  '1',
  '--seq-len',
  '512',
  '--workers',
  '1',
  '-q',
];

describe('megadocs run --subset --split', () => {
  it('reads the subset and split named, records them, and refuses a rerun with another subset', async () => {
    const out = await tempDir();
    const env = { HF_ENDPOINT: hub.url };
    const result = await runCli(run(out, '--subset', 'CC-MAIN-2013-20', '--split', 'train'), env);
    expect([result.code, result.stderr]).toEqual([0, '']);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.identity).toMatchObject({ subset: 'CC-MAIN-2013-20', split: 'train' });
    expect(manifest.stats.generate.documents).toBe(300);
    const other = await runCli(run(out, '--subset', 'default', '--split', 'train'), env);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('subset was "CC-MAIN-2013-20", now "default"');
  });

  it('names the subsets there are when the one asked for is not, before any request', async () => {
    llm.reset();
    const result = await runCli(run(await tempDir(), '--subset', 'CC-MAIN-2099-01'), {
      HF_ENDPOINT: hub.url,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('CC-MAIN-2099-01');
    expect(result.stderr).toContain('CC-MAIN-2013-20');
    expect(llm.stats.received).toBe(0);
  });
});
