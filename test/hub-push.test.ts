// Pushing a run's output to the loopback Hub while it runs: batched commits (by count and by time), the index
// in the last commit, byte-identical files, retries on 412/429, the token kept off the storage host.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHubClient } from '../lib/hub/client.js';
import { HubPusher, type PushOptions } from '../lib/hub/push.js';
import { parseHubUrl } from '../lib/hub/url.js';
import { SHARED_DATA, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';

let server: HubServer;
let out: string;

beforeEach(async () => {
  server = await startHubServer({ repos: [] });
  out = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-push-'));
});
afterEach(() => server.close());

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Shard files cut from real data (the pusher moves bytes; it does not look inside). */
async function writeShards(count: number, folder = ''): Promise<string[]> {
  const source = await fs.readFile(path.join(SHARED_DATA, 'wikipedia-2349.jsonl.zst'));
  const step = Math.floor(source.length / count);
  await fs.mkdir(path.join(out, folder), { recursive: true });
  const names: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const name = path.join(folder, `shard.${String(index).padStart(5, '0')}.mds.zstd`);
    await fs.writeFile(path.join(out, name), source.subarray(index * step, (index + 1) * step));
    names.push(name);
  }
  await fs.writeFile(path.join(out, folder, 'index.json'), JSON.stringify({ shards: [], version: 2 }));
  return names;
}

function pusher(options: Partial<PushOptions> = {}, token: string | null = TEST_TOKEN): HubPusher {
  return new HubPusher({
    client: createHubClient({ endpoint: server.url, token: token ?? undefined, retry: { baseDelayMs: 1 } }),
    target: parseHubUrl('hf://datasets/me/synthetic/run-1'),
    root: out,
    retryDelayMs: 1,
    ...options,
  });
}

async function expectOnHub(names: string[]): Promise<void> {
  for (const name of names) {
    const local = await fs.readFile(path.join(out, name));
    const remote = await server.fileBytes('me/synthetic', 'main', `run-1/${name.split(path.sep).join('/')}`);
    expect(remote && sha256(remote), name).toBe(sha256(local));
  }
}

describe('HubPusher', () => {
  it('commits every batchFiles shards as they come, and the index last', async () => {
    const names = await writeShards(5);
    const push = pusher({ batchFiles: 2 });
    for (const name of names) push.addShard(name);
    const summary = await push.finish('index.json');
    expect(summary).toEqual({ commits: 3, files: 6 });
    expect(server.stats.commits.map((commit) => commit.paths)).toEqual([
      ['run-1/shard.00000.mds.zstd', 'run-1/shard.00001.mds.zstd'],
      ['run-1/shard.00002.mds.zstd', 'run-1/shard.00003.mds.zstd'],
      ['run-1/shard.00004.mds.zstd', 'run-1/index.json'],
    ]);
    await expectOnHub([...names, 'index.json']);
    expect(server.repos.get('me/synthetic')?.spec.private).toBe(true);
  });

  it('commits a waiting shard after batchDelayMs, before the run finishes', async () => {
    const names = await writeShards(1, 'rank-00001');
    let committed!: () => void;
    const firstCommit = new Promise<void>((resolve) => {
      committed = resolve;
    });
    const push = pusher({ batchFiles: 100, batchDelayMs: 20, onCommit: () => committed() });
    push.addShard(names[0]);
    await firstCommit;
    expect(server.stats.commits.map((commit) => commit.paths)).toEqual([
      ['run-1/rank-00001/shard.00000.mds.zstd'],
    ]);
    await push.finish(path.join('rank-00001', 'index.json'));
    expect(server.stats.commits).toHaveLength(2);
    await expectOnHub([...names, path.join('rank-00001', 'index.json')]);
  });

  it('retries commits answered 412 and 429, and never sends the token to the storage host', async () => {
    const names = await writeShards(2);
    server.failNext(1, 412, /^POST \/api\/datasets\/me\/synthetic\/commit\//);
    server.failNext(1, 429, /^POST \/api\/datasets\/me\/synthetic\/commit\//);
    const push = pusher({ batchFiles: 10, attempts: 3 });
    for (const name of names) push.addShard(name);
    await push.finish('index.json');
    const commits = server.stats.requests.filter((request) => request.url.includes('/commit/'));
    expect(commits.map((request) => request.status)).toEqual([412, 429, 200]);
    await expectOnHub(names);
    const uploads = server.stats.requests.filter(
      (request) => request.host === 'cdn' && request.method === 'PUT',
    );
    expect(uploads.length).toBe(names.length);
    expect(server.stats.authorization.cdn.every((header) => header === '')).toBe(true);
  });

  it('fails with a message about write access when the token cannot write, and refuses more shards', async () => {
    const names = await writeShards(2);
    const push = pusher({ batchFiles: 1 }, null);
    push.addShard(names[0]);
    await expect(push.finish('index.json')).rejects.toThrow(
      /hf:\/\/datasets\/me\/synthetic\/run-1: push failed: the Hub answered 401.*Set HF_TOKEN to a token with write access to me\/synthetic/,
    );
    expect(() => push.addShard(names[1])).toThrow(/push failed/);
  });
});
