// The built CLI's `pull` run twice into one folder: the rerun finds everything complete, hashes nothing, and must
// still exit at once (an idle hashing worker once kept the process alive for ever on Node 20).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, tempDir, waitCli } from './helpers/cli.js';
import { SHARED_DATA, sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';

const EXIT_WITHIN_MS = 10_000;

let server: HubServer;

beforeAll(async () => {
  server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 1) });
});
afterAll(() => server.close());

/** `megadocs pull ARGS` as a child process, killed if it has not exited within EXIT_WITHIN_MS. */
async function pull(args: string[]) {
  const child = startCli(['pull', ...args, '--json'], { HF_ENDPOINT: server.url, HF_TOKEN: TEST_TOKEN });
  const started = Date.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
  try {
    const result = await waitCli(child);
    return { ...result, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

describe('megadocs pull (built CLI)', () => {
  it('exits 0 on a rerun where every file is already complete', async () => {
    const dir = await tempDir('megadocs-pull-exit-');
    const source = 'hf://datasets/HuggingFaceFW/fineweb';
    const first = await pull([source, dir]);
    expect(first.signal, first.stderr).toBeNull();
    expect(first.code, first.stderr).toBe(0);
    const pulled = JSON.parse(first.stdout.toString());
    expect(pulled.files).toBeGreaterThan(0);
    expect(pulled).toMatchObject({ downloaded: pulled.files, skipped: 0 });

    const second = await pull([source, dir]);
    expect(second.signal, 'the rerun did not exit by itself').toBeNull();
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout.toString())).toMatchObject({ skipped: pulled.files, bytes: 0 });
    expect(second.ms).toBeLessThan(EXIT_WITHIN_MS);
  });
});
