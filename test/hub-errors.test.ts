// Refusals and failures of the Hub become errors that say what to do (401, 403 gated, missing repo, revision
// or path, exhausted retries), and 429 bursts / 5xx answers are retried, honouring Retry-After.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubClient, type HubOptions, type RetryEvent } from '../lib/hub/client.js';
import { resolveHubFiles } from '../lib/hub/files.js';
import { expandHubInput } from '../lib/hub/shard.js';
import { parseHubUrl } from '../lib/hub/url.js';
import { readDocs } from '../lib/sources/read.js';
import { drain } from '../lib/stream.js';
import { SHARED_DATA, sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';

let server: HubServer;
const fast = { retry: { baseDelayMs: 1, maxDelayMs: 5_000 } } satisfies HubOptions;

beforeAll(async () => {
  server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, 2), pageSize: 1 });
});
afterAll(() => server.close());

function list(input: string, options: HubOptions = {}) {
  return resolveHubFiles(parseHubUrl(input), createHubClient({ endpoint: server.url, ...fast, ...options }));
}

describe('refusals', () => {
  it('a private dataset without a token: 401, set HF_TOKEN', async () => {
    const error = list('hf://datasets/megadocs/private-fineweb');
    await expect(error).rejects.toThrow(/hf:\/\/datasets\/megadocs\/private-fineweb: .*401 Unauthorized/);
    await expect(error).rejects.toThrow(/Set HF_TOKEN to a read token/);
  });

  it('a gated dataset without a token says to set HF_TOKEN and accept the terms', async () => {
    await expect(list('hf://datasets/megadocs/gated-wikipedia')).rejects.toThrow(
      /Set HF_TOKEN.*accept its terms at http:\/\/127\.0\.0\.1:\d+\/datasets\/megadocs\/gated-wikipedia/,
    );
  });

  it("a gated dataset with a token that has no access: 403, accept the dataset's terms", async () => {
    const error = list('hf://datasets/megadocs/gated-wikipedia', { token: 'hf_someone_else' });
    await expect(error).rejects.toThrow(/access to the dataset megadocs\/gated-wikipedia is restricted/);
    await expect(error).rejects.toThrow(
      /Accept the dataset's terms at .*\/datasets\/megadocs\/gated-wikipedia/,
    );
  });

  it('a missing dataset', async () => {
    await expect(list('hf://datasets/nobody/nothing/data/*.parquet')).rejects.toThrow(
      /the dataset nobody\/nothing does not exist/,
    );
  });

  it('a missing revision names the branches and converted refs that exist', async () => {
    await expect(list('hf://datasets/fka/awesome-chatgpt-prompts@v2/default')).rejects.toThrow(
      /has no revision "v2".*Branches: main; tags: none; converted: refs\/convert\/parquet/,
    );
  });

  it('a missing path names what the nearest existing folder holds', async () => {
    await expect(list('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2099-01/*.parquet')).rejects.toThrow(
      /"data\/CC-MAIN-2099-01\/\*\.parquet" does not exist at revision main. "data" holds: data\/CC-MAIN-2013-20\//,
    );
    await expect(
      list('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/999.parquet'),
    ).rejects.toThrow(
      /"data\/CC-MAIN-2013-20" holds: data\/CC-MAIN-2013-20\/000_00000\.parquet, data\/CC-MAIN-2013-20\/000_00001\.parquet/,
    );
  });

  it('a glob that matches nothing lists the files that are there', async () => {
    await expect(list('hf://datasets/HuggingFaceFW/fineweb/data/*/*.jsonl')).rejects.toThrow(
      /no file matches "data\/\*\/\*\.jsonl".*Files under "data": data\/CC-MAIN-2013-20\/000_00000\.parquet/,
    );
  });

  it('parses revisions, slashed revisions, encoded revisions and globs', () => {
    expect(parseHubUrl('hf://datasets/HuggingFaceFW/fineweb')).toEqual({
      repo: 'HuggingFaceFW/fineweb',
      revision: 'main',
      path: '',
    });
    expect(parseHubUrl('hf://datasets/a/b@v1.0/data/*.parquet')).toEqual({
      repo: 'a/b',
      revision: 'v1.0',
      path: 'data/*.parquet',
    });
    expect(parseHubUrl('hf://datasets/a/b@refs/convert/parquet/default/train')).toEqual({
      repo: 'a/b',
      revision: 'refs/convert/parquet',
      path: 'default/train',
    });
    expect(parseHubUrl('hf://datasets/a/b@refs%2Fpr%2F7/x.jsonl')).toEqual({
      repo: 'a/b',
      revision: 'refs/pr/7',
      path: 'x.jsonl',
    });
  });

  it('malformed URLs say what shape is expected', () => {
    expect(() => parseHubUrl('hf://models/gpt2')).toThrow(
      /only dataset repositories.*hf:\/\/datasets\/ORG\/NAME/,
    );
    expect(() => parseHubUrl('hf://datasets/onlyorg')).toThrow(/ORG\/NAME/);
  });
});

describe('retries', () => {
  it('rides out a 429 burst on the API, waiting as long as Retry-After says', async () => {
    const bursty = await startHubServer({
      repos: sharedDataRepos(SHARED_DATA, 3),
      pageSize: 1,
      apiBurst: 2,
      retryAfterSeconds: 1,
    });
    try {
      const retries: RetryEvent[] = [];
      const client = createHubClient({
        endpoint: bursty.url,
        ...fast,
        onRetry: (event) => retries.push(event),
      });
      const files = await resolveHubFiles(
        parseHubUrl('hf://datasets/HuggingFaceFW/fineweb/data/*/*'),
        client,
      );
      expect(files).toHaveLength(3);
      const limited = bursty.stats.requests.filter((request) => request.status === 429);
      expect(limited.length).toBeGreaterThan(0);
      expect(retries.map((event) => [event.reason, event.delayMs])).toEqual(limited.map(() => ['429', 1000]));
    } finally {
      await bursty.close();
    }
  });

  it('retries 5xx answers with backoff, then reads the file', async () => {
    const retries: RetryEvent[] = [];
    const client = createHubClient({
      endpoint: server.url,
      ...fast,
      onRetry: (event) => retries.push(event),
    });
    const shards = await expandHubInput('hf://datasets/HuggingFaceFW/fineweb/data/*/000_00000.parquet', {
      client,
    });
    server.failNext(2, 503, /^GET \/datasets\/.*\/resolve\//);
    let documents = 0;
    await drain(readDocs(shards), () => {
      documents += 1;
    });
    expect(documents).toBeGreaterThan(0);
    expect(retries.map((event) => event.reason)).toEqual(['503', '503']);
    expect(retries.every((event) => event.delayMs <= 2)).toBe(true);
  });

  it('gives up after the configured tries with an error that says to try later', async () => {
    server.failNext(3, 502, /\/tree\//);
    await expect(
      list('hf://datasets/HuggingFaceFW/fineweb/data/*/*', { retry: { attempts: 3, baseDelayMs: 1 } }),
    ).rejects.toThrow(/the Hub answered 502.*run the command again later/);
  });

  it('the gated dataset opens with a token that has access', async () => {
    const files = await list('hf://datasets/megadocs/gated-wikipedia', { token: TEST_TOKEN });
    expect(files.map((file) => file.path)).toEqual(['wikipedia.jsonl.zst']);
  });
});
