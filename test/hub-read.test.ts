// Reading Hub datasets lazily through the loopback Hub: listing with pagination, globs, --config/--split,
// Parquet by ranged reads (counted server side), .jsonl.zst as a streamed GET, and the token kept off the CDN.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { type FileMetaData, parquetMetadataAsync } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubClient, type HubClient } from '../lib/hub/client.js';
import { resolveHubFiles } from '../lib/hub/files.js';
import { READAHEAD_ROW_GROUPS } from '../lib/hub/readahead.js';
import { expandHubInput, hubShard } from '../lib/hub/shard.js';
import { parseHubUrl } from '../lib/hub/url.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { localShard } from '../lib/sources/local.js';
import type { ReadOptions } from '../lib/sources/read.js';
import { readDocs } from '../lib/sources/read.js';
import type { ShardRef } from '../lib/sources/types.js';
import { drain, toAsyncIterable } from '../lib/stream.js';
import { SHARED_DATA, sharedDataRepos, TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';

const FINEWEB = path.join(SHARED_DATA, 'fineweb-300.parquet');
const WIKIPEDIA_ZST = path.join(SHARED_DATA, 'wikipedia-2349.jsonl.zst');
const COPIES = 3;

let server: HubServer;
let client: HubClient;

beforeAll(async () => {
  server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, COPIES), pageSize: 2 });
  client = createHubClient({ endpoint: server.url, token: TEST_TOKEN });
});
afterAll(() => server.close());

/** id + sha1(text) of every document, in order. */
async function fingerprints(shards: ShardRef[], options: ReadOptions = {}): Promise<string[]> {
  const keys: string[] = [];
  await drain(readDocs(shards, options), (doc) => {
    keys.push(`${doc.id}\t${createHash('sha1').update(doc.text).digest('hex')}`);
  });
  return keys;
}

function resetCounters(): void {
  server.stats.rangeRequests.clear();
  server.stats.bytesServed.clear();
  server.stats.requests.length = 0;
  server.stats.authorization.hub.length = 0;
  server.stats.authorization.cdn.length = 0;
}

/** Byte span of the named columns' chunks in each row group. */
function columnBytes(metadata: FileMetaData, names: string[]): number[] {
  return metadata.row_groups.map((group) =>
    group.columns
      .filter((column) => names.includes(column.meta_data?.path_in_schema[0] ?? ''))
      .reduce((sum, column) => sum + Number(column.meta_data?.total_compressed_size ?? 0), 0),
  );
}

async function localMetadata(file: string): Promise<FileMetaData> {
  return parquetMetadataAsync(await localShard(file).openBuffer());
}

describe('listing', () => {
  it('expands a glob over paginated tree pages, with the sizes and sha256 the Hub lists', async () => {
    resetCounters();
    const files = await resolveHubFiles(
      parseHubUrl('hf://datasets/HuggingFaceFW/fineweb/data/*/*.parquet'),
      client,
    );
    expect(files.map((file) => file.path)).toEqual(
      Array.from({ length: COPIES }, (_, i) => `data/CC-MAIN-2013-20/000_0000${i}.parquet`),
    );
    const pages = server.stats.requests.filter((request) => request.url.includes('/tree/'));
    expect(pages.some((request) => request.url.includes('cursor='))).toBe(true);
    const sha256 = createHash('sha256')
      .update((await server.fileBytes('HuggingFaceFW/fineweb', 'main', files[0].path)) ?? '')
      .digest('hex');
    for (const file of files) {
      expect(file.size).toBe(statSync(FINEWEB).size);
      expect(file.sha256).toBe(sha256);
    }
  });

  it('takes a single file path, and a folder as all files below it', async () => {
    const single = await resolveHubFiles(
      parseHubUrl(
        'hf://datasets/mlfoundations/dclm-baseline-1.0/global-shard_01_of_10/local-shard_0_of_10/shard_00000001_processed.jsonl.zst',
      ),
      client,
    );
    expect(single.map((file) => file.path)).toEqual([
      'global-shard_01_of_10/local-shard_0_of_10/shard_00000001_processed.jsonl.zst',
    ]);
    const folder = await resolveHubFiles(
      parseHubUrl('hf://datasets/mlfoundations/dclm-baseline-1.0/global-shard_01_of_10'),
      client,
    );
    expect(folder).toHaveLength(COPIES);
  });

  it('resolves --config/--split from the dataset card configs: YAML', async () => {
    const location = parseHubUrl('hf://datasets/HuggingFaceFW/fineweb');
    const dump = await resolveHubFiles(location, client, { config: 'CC-MAIN-2013-20', split: 'train' });
    const all = await resolveHubFiles(location, client, { config: 'default' });
    expect(dump.map((file) => file.path)).toEqual(all.map((file) => file.path));
    expect(dump).toHaveLength(COPIES);
    await expect(resolveHubFiles(location, client, { config: 'CC-MAIN-2099-01' })).rejects.toThrow(
      /no config "CC-MAIN-2099-01".*Configs: default, CC-MAIN-2013-20/,
    );
    await expect(resolveHubFiles(location, client, { config: 'default', split: 'test' })).rejects.toThrow(
      /no split "test".*Splits of "default": train/,
    );
  });

  it('resolves --config/--split from refs/convert/parquet when the card has no configs', async () => {
    const location = parseHubUrl('hf://datasets/fka/awesome-chatgpt-prompts');
    const shards = await expandHubInput('hf://datasets/fka/awesome-chatgpt-prompts', {
      client,
      selection: { config: 'default', split: 'train' },
    });
    expect(shards.map((shard) => shard.name)).toEqual([
      'hf://datasets/fka/awesome-chatgpt-prompts@refs/convert/parquet/default/train/0000.parquet',
    ]);
    const local = localShard(path.join(SHARED_DATA, 'hub-convert-parquet/default/train/0000.parquet'));
    const options = { textField: 'prompt', idField: 'act' };
    const [remote, expected] = [await fingerprints(shards, options), await fingerprints([local], options)];
    expect(remote).toEqual(expected);
    expect(remote.length).toBeGreaterThan(0);
    await expect(resolveHubFiles(location, client, { config: 'default', split: 'test' })).rejects.toThrow(
      /no split "test".*Splits of "default": train/,
    );
    await expect(resolveHubFiles(location, client, { config: 'other' })).rejects.toThrow(
      /no converted config "other".*Configs: default/,
    );
  });

  it('reads a revision with slashes given in the URL', async () => {
    const files = await resolveHubFiles(
      parseHubUrl('hf://datasets/fka/awesome-chatgpt-prompts@refs/convert/parquet/default/*/*.parquet'),
      client,
    );
    expect(files.map((file) => [file.revision, file.path])).toEqual([
      ['refs/convert/parquet', 'default/train/0000.parquet'],
    ]);
  });
});

describe('lazy reading', () => {
  it('reads Parquet row group by row group by range requests, fetching only the text and id columns', async () => {
    const [file] = await resolveHubFiles(
      parseHubUrl('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00000.parquet'),
      client,
    );
    resetCounters();
    const remote = await fingerprints([hubShard(file, client)]);
    expect(remote).toEqual(await fingerprints([localShard(FINEWEB)]));

    const key = `HuggingFaceFW/fineweb/${file.path}`;
    const metadata = await localMetadata(FINEWEB);
    const needed = columnBytes(metadata, ['text', 'id']).reduce((sum, bytes) => sum + bytes, 0);
    const footer = Math.min(1 << 16, file.size);
    const ranges = server.stats.rangeRequests.get(key) ?? 0;
    expect(ranges).toBe(metadata.row_groups.length + 1);
    const cdnGets = server.stats.requests.filter((request) => request.host === 'cdn');
    expect(cdnGets.length).toBe(ranges);
    const served = server.stats.bytesServed.get(key) ?? 0;
    expect(served).toBeGreaterThanOrEqual(needed);
    expect(served).toBeLessThanOrEqual(needed + footer);
    const skippedColumns = columnBytes(metadata, ['language', 'language_score', 'token_count']).reduce(
      (a, b) => a + b,
      0,
    );
    expect(skippedColumns).toBeGreaterThan(0);
    expect(served - footer).toBeLessThanOrEqual(file.size - skippedColumns);
  });

  it('for the first documents, fetches only the footer, the first row group and the readahead', async () => {
    const [file] = await resolveHubFiles(
      parseHubUrl('hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/000_00001.parquet'),
      client,
    );
    resetCounters();
    let seen = 0;
    for await (const _doc of toAsyncIterable(readDocs([hubShard(file, client)]))) {
      seen += 1;
      if (seen === 10) break;
    }
    const metadata = await localMetadata(FINEWEB);
    const groups = 1 + READAHEAD_ROW_GROUPS;
    const firstGroups = columnBytes(metadata, ['text', 'id']).slice(0, groups);
    const key = `HuggingFaceFW/fineweb/${file.path}`;
    expect(metadata.row_groups.length).toBeGreaterThan(groups);
    expect(server.stats.rangeRequests.get(key)).toBe(1 + groups);
    const footer = Math.min(1 << 16, file.size);
    expect(server.stats.bytesServed.get(key)).toBe(
      footer + firstGroups.reduce((sum, bytes) => sum + bytes, 0),
    );
  });

  it('streams .jsonl.zst as one plain GET through the zstd decompressor', async () => {
    const [shard] = await expandHubInput(
      'hf://datasets/mlfoundations/dclm-baseline-1.0/global-shard_01_of_10/local-shard_0_of_10/shard_00000000_processed.jsonl.zst',
      { client },
    );
    resetCounters();
    const remote = await fingerprints([shard]);
    expect(remote).toEqual(await fingerprints([localShard(WIKIPEDIA_ZST)]));
    const key =
      'mlfoundations/dclm-baseline-1.0/global-shard_01_of_10/local-shard_0_of_10/shard_00000000_processed.jsonl.zst';
    expect(server.stats.rangeRequests.get(key)).toBeUndefined();
    expect(server.stats.bytesServed.get(key)).toBe(statSync(WIKIPEDIA_ZST).size);
  });

  it('sends the token to the Hub and never to the CDN it redirects to', async () => {
    resetCounters();
    const shards = await expandHubInput('hf://datasets/megadocs/private-fineweb/data/*.parquet', { client });
    expect(await fingerprints(shards)).toEqual(await fingerprints([localShard(FINEWEB)]));
    const { hub, cdn } = server.stats.authorization;
    expect(cdn.length).toBeGreaterThan(0);
    expect(cdn.every((header) => header === '')).toBe(true);
    expect(hub.length).toBeGreaterThan(0);
    expect(hub.every((header) => header === `Bearer ${TEST_TOKEN}`)).toBe(true);
  });

  it('expandInputs takes hf:// inputs beside local ones, in the given order', async () => {
    const shards = await expandInputs([WIKIPEDIA_ZST, 'hf://datasets/fka/awesome-chatgpt-prompts'], {
      hub: { client, selection: { config: 'default', split: 'train' } },
    });
    expect(shards.map((shard) => shard.name)).toEqual([
      WIKIPEDIA_ZST,
      'hf://datasets/fka/awesome-chatgpt-prompts@refs/convert/parquet/default/train/0000.parquet',
    ]);
  });

  it('leaves out files it cannot read, and says so', async () => {
    const skipped: string[] = [];
    const shards = await expandHubInput('hf://datasets/HuggingFaceFW/fineweb', {
      client,
      onSkipped: (name) => skipped.push(name),
    });
    expect(skipped).toEqual(['hf://datasets/HuggingFaceFW/fineweb/README.md']);
    expect(shards).toHaveLength(COPIES);
  });
});
