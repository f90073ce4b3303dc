// Mirroring Hub files to disk: byte-identical (sha256) with the repo layout, bounded parallelism, complete
// files skipped, partial files resumed by Range (or restarted when damaged), broken transfers continued.
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHubClient, type HubClient } from '../lib/hub/client.js';
import { type HubFile, resolveHubFiles } from '../lib/hub/files.js';
import { PARTIAL_SUFFIX, pullHubFiles } from '../lib/hub/pull.js';
import { parseHubUrl } from '../lib/hub/url.js';
import { SHARED_DATA, sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';

let server: HubServer;
let client: HubClient;
let dir: string;

beforeAll(async () => {
  server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 3) });
  client = createHubClient({ endpoint: server.url, token: TEST_TOKEN, retry: { baseDelayMs: 1 } });
});
afterAll(() => server.close());
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-pull-'));
  server.stats.requests.length = 0;
  server.stats.bytesServed.clear();
  server.stats.maxInFlight = 0;
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function listed(input: string): Promise<HubFile[]> {
  return resolveHubFiles(parseHubUrl(input), client);
}

async function expectIdentical(files: HubFile[]): Promise<void> {
  for (const file of files) {
    const served = await server.fileBytes(file.repo, file.revision, file.path);
    const pulled = await fs.readFile(path.join(dir, file.path));
    expect(sha256(pulled), file.path).toBe(sha256(served!));
    expect(existsSync(path.join(dir, file.path + PARTIAL_SUFFIX))).toBe(false);
  }
}

describe('megadocs pull (library)', () => {
  it('downloads a whole dataset byte-identical, with its layout, at most `concurrency` files at a time', async () => {
    const files = await listed('hf://datasets/mlfoundations/dclm-baseline-1.0');
    let progressBytes = 0;
    const summary = await pullHubFiles(files, dir, client, {
      concurrency: 2,
      onProgress: (event) => {
        progressBytes += event.bytes;
      },
    });
    await expectIdentical(files);
    const total = files.reduce((sum, file) => sum + file.size, 0);
    expect(summary).toMatchObject({
      files: files.length,
      downloaded: files.length,
      skipped: 0,
      bytes: total,
    });
    expect(progressBytes).toBe(total);
    expect(server.stats.maxInFlight).toBeGreaterThan(0);
    expect(server.stats.maxInFlight).toBeLessThanOrEqual(2);
  });

  it('skips files that are complete on disk and fetches nothing for them', async () => {
    const files = await listed('hf://datasets/HuggingFaceFW/fineweb');
    await pullHubFiles(files, dir, client);
    server.stats.requests.length = 0;
    const again = await pullHubFiles(files, dir, client);
    expect(again).toMatchObject({ skipped: files.length, downloaded: 0, bytes: 0 });
    expect(server.stats.requests.filter((request) => request.url.includes('/resolve/'))).toEqual([]);
  });

  it('continues a partial download with a Range request from where it stopped', async () => {
    const [file] = await listed('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00000.parquet');
    const served = (await server.fileBytes(file.repo, file.revision, file.path))!;
    const kept = Math.floor(file.size / 3);
    const partial = path.join(dir, file.path + PARTIAL_SUFFIX);
    await fs.mkdir(path.dirname(partial), { recursive: true });
    await fs.writeFile(partial, served.subarray(0, kept));
    const summary = await pullHubFiles([file], dir, client);
    expect(summary).toMatchObject({ resumed: 1, bytes: file.size - kept });
    expect(
      server.stats.requests.filter((request) => request.host === 'cdn').map((request) => request.range),
    ).toEqual([`bytes=${kept}-`]);
    await expectIdentical([file]);
  });

  it('restarts a partial file whose bytes are wrong (the sha256 check catches it)', async () => {
    const [file] = await listed('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00001.parquet');
    const partial = path.join(dir, file.path + PARTIAL_SUFFIX);
    await fs.mkdir(path.dirname(partial), { recursive: true });
    await fs.writeFile(partial, Buffer.alloc(1000, 7));
    const summary = await pullHubFiles([file], dir, client);
    expect(summary).toMatchObject({ downloaded: 1, resumed: 0 });
    await expectIdentical([file]);
  });

  it('restarts a partial file of full length whose bytes are wrong, without landing it', async () => {
    const [file] = await listed('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00001.parquet');
    const served = (await server.fileBytes(file.repo, file.revision, file.path))!;
    const partial = path.join(dir, file.path + PARTIAL_SUFFIX);
    await fs.mkdir(path.dirname(partial), { recursive: true });
    const damaged = Buffer.from(served);
    damaged[damaged.length >> 1] ^= 0xff;
    await fs.writeFile(partial, damaged);
    const summary = await pullHubFiles([file], dir, client);
    expect(summary).toMatchObject({ downloaded: 1, resumed: 0, bytes: file.size });
    expect(
      server.stats.requests.filter((request) => request.host === 'cdn').map((request) => request.range),
    ).toEqual([undefined]);
    await expectIdentical([file]);
  });

  it('resumes after the connection breaks in the middle of a file', async () => {
    const [file] = await listed('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00002.parquet');
    const cutAt = 100_000;
    server.cutNext(1, cutAt);
    const summary = await pullHubFiles([file], dir, client);
    expect(summary).toMatchObject({ resumed: 1 });
    const ranges = server.stats.requests
      .filter((request) => request.host === 'cdn')
      .map((request) => request.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(cutAt);
    const firstTry = summary.bytes - (file.size - resumedAt);
    expect(firstTry).toBeGreaterThanOrEqual(resumedAt);
    expect(firstTry).toBeLessThanOrEqual(cutAt);
    await expectIdentical([file]);
  });

  it('refuses a file whose content does not match the listed sha256, leaving nothing behind', async () => {
    const [file] = await listed('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00000.parquet');
    const wrong = { ...file, sha256: '0'.repeat(64) };
    await expect(pullHubFiles([wrong], dir, client, { attempts: 2 })).rejects.toThrow(
      /000_00000\.parquet: the download is damaged: sha256 [0-9a-f]{64} differs from the listed 0{64}/,
    );
    expect(existsSync(path.join(dir, file.path))).toBe(false);
    expect(existsSync(path.join(dir, file.path + PARTIAL_SUFFIX))).toBe(false);
  });

  it('checks small non-LFS files against their git blob id', async () => {
    const files = await listed('hf://datasets/HuggingFaceFW/fineweb/README.md');
    expect(files[0].gitOid).toMatch(/^[0-9a-f]{40}$/);
    await pullHubFiles(files, dir, client);
    await expectIdentical(files);
    const tampered = [{ ...files[0], gitOid: 'f'.repeat(40) }];
    await fs.rm(path.join(dir, 'README.md'));
    await expect(pullHubFiles(tampered, dir, client, { attempts: 1 })).rejects.toThrow(/git oid .* differs/);
  });
});
