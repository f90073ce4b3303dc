// Paid answers survive a changed command: `--reuse-journal` replays every byte-identical request of the replaced
// run, and ids, seeds and the run identity do not depend on the working directory or the spelling of a path.
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zstdDecompress } from '../lib/codecs/zstd.js';
import { KeyLocations } from '../lib/generate/journal-reuse-index.js';
import { requestSeed } from '../lib/generate/seeds.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { CLI, type CliResult, runCli, SHARED_DATA, tempDir, waitCli } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { datasetFiles, realInput, type SourceDoc } from './helpers/run-output.js';

let server: OpenAiTestServer;
let dir: string;

beforeAll(async () => {
  server = await startOpenAiServer();
  dir = await tempDir('megadocs-reuse-journal-');
});
afterAll(() => server.close());

function runArgs(inputs: string[], out: string, ...extra: string[]): string[] {
  return [
    'run',
    ...inputs,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'test-model',
    '--generations',
    '2',
    '--workers',
    '0',
    '--quiet',
    ...extra,
  ];
}

async function succeeds(args: string[]): Promise<void> {
  const result = await runCli(args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

/** Records `from`..`to` of a real JSONL corpus, written to `file`. */
async function corpusSlice(corpus: string, from: number, to: number, file: string) {
  const lines = (await readFile(join(SHARED_DATA, corpus), 'utf8')).split('\n').slice(from, to);
  await writeFile(file, `${lines.join('\n')}\n`);
  const docs = lines.map((line) => JSON.parse(line) as { id: string | number; text: string });
  return { file, docs: docs.map((doc) => ({ id: String(doc.id), text: doc.text })) };
}

/** The seed of each document's one request (G = 2 in one request of n = 2, style wiki). */
function seedsOf(docs: SourceDoc[]): number[] {
  return docs.map((doc) => requestSeed(0, doc.id, 'rephrase', 'wiki:0'));
}

describe('--reuse-journal', () => {
  it('replaces a run of other options and sends no request it had paid for', async () => {
    const { file } = await realInput(dir, 12, 'fineweb-300.jsonl', 'same.jsonl');
    const out = join(dir, 'changed-seq-len');
    server.reset();
    await succeeds(runArgs([file], out, '--seq-len', '128'));
    expect(server.stats.received).toBe(12);

    const refused = await runCli(runArgs([file], out, '--seq-len', '256'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('seqLen was 128, now 256');
    expect(refused.stderr).toContain(
      'pass --reuse-journal to start this run here and reuse its paid answers',
    );

    server.reset();
    await succeeds(runArgs([file], out, '--seq-len', '256', '--reuse-journal'));
    expect(server.stats.received).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.status).toBe('complete');
    expect(manifest.options.seqLen).toBe(256);
    expect(manifest.stats.generate.requests.replayed).toBe(12);
    expect(await readdir(join(out, 'state', 'reused'))).toEqual(['generate.journal.00000.jsonl']);

    // The same bytes as the changed command run from scratch.
    const fresh = join(dir, 'fresh-seq-len');
    await succeeds(runArgs([file], fresh, '--seq-len', '256'));
    expect(await datasetFiles(out)).toEqual(await datasetFiles(fresh));
  });

  it('with an input left out and another added, pays only for the new documents', async () => {
    const kept = await realInput(dir, 8, 'fineweb-300.jsonl', 'kept.jsonl');
    const dropped = await realInput(dir, 4, 'wikipedia-2349.jsonl', 'dropped.jsonl');
    const added = await corpusSlice('wikipedia-2349.jsonl', 4, 10, join(dir, 'added.jsonl'));
    const out = join(dir, 'changed-inputs');
    await succeeds(runArgs([kept.file, dropped.file], out, '--seq-len', '128'));

    server.reset();
    await succeeds(runArgs([kept.file, added.file], out, '--seq-len', '128', '--reuse-journal'));
    expect([...server.stats.receivedBySeed.keys()].sort()).toEqual(seedsOf(added.docs).sort());
    expect(server.stats.received).toBe(added.docs.length);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.stats.generate.requests.replayed).toBe(kept.docs.length);
  });
});

/** Runs the CLI from `cwd`. */
function runFrom(cwd: string, args: string[]): Promise<CliResult> {
  return waitCli(spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
}

async function generated(out: string): Promise<Array<{ doc_id: string; seed: number }>> {
  const names = (await readdir(out)).filter((name) => name.endsWith('.jsonl.zst')).sort();
  const text = Buffer.concat(
    await Promise.all(names.map(async (name) => zstdDecompress(await readFile(join(out, name))))),
  ).toString('utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .map(({ doc_id, seed }) => ({ doc_id, seed }));
}

describe('ids and seeds do not depend on the working directory or the spelling of a path', () => {
  it('gives documents without ids the same FILE:ROW ids and seeds from anywhere, and the same run identity', async () => {
    const data = join(dir, 'corpus');
    await mkdir(join(data, 'part'), { recursive: true });
    const texts = ['First page of the corpus.', 'Second page, longer.', 'Third page.'];
    await writeFile(
      join(data, 'part', 'no-ids.jsonl'),
      texts.map((text) => JSON.stringify({ text })).join('\n'),
    );
    const generate = (input: string, out: string) => [
      'generate',
      input,
      '--out',
      out,
      '--llm',
      server.url,
      '--model',
      'test-model',
      '--generations',
      '1',
      '--quiet',
    ];

    // The same file: relative from its parent's parent, absolute from its own folder.
    const byFile = [
      await runFrom(dir, generate('corpus/part/no-ids.jsonl', 'out-file-1')),
      await runFrom(
        join(data, 'part'),
        generate(join(data, 'part', 'no-ids.jsonl'), join(dir, 'out-file-2')),
      ),
    ];
    expect(byFile.map((result) => [result.code, result.stderr])).toEqual([
      [0, ''],
      [0, ''],
    ]);
    const records = await generated(join(dir, 'out-file-1'));
    expect(records.map((record) => record.doc_id)).toEqual([
      'no-ids.jsonl:0',
      'no-ids.jsonl:1',
      'no-ids.jsonl:2',
    ]);
    expect(await generated(join(dir, 'out-file-2'))).toEqual(records);
    // Spelled with `..`, or found in a folder (its own name, then the path inside it), or by a glob.
    const named = async (input: string) => (await expandInputs([input])).map((shard) => shard.stableName);
    expect(await named(join(data, 'part', '..', 'part', 'no-ids.jsonl'))).toEqual(['no-ids.jsonl']);
    expect(await named(join(data, 'part', '..'))).toEqual(['corpus/part/no-ids.jsonl']);
    expect(await named(`${data}/`)).toEqual(['corpus/part/no-ids.jsonl']);
    expect(await named(`${data}/**/*.jsonl`)).toEqual(['corpus/part/no-ids.jsonl']);

    // The run identity matches too: the other spelling finds this very run (complete), not "different options".
    const again = await runFrom(data, generate(join(data, 'part', 'no-ids.jsonl'), join(dir, 'out-file-1')));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('is already complete');
  });

  it('refuses two different files that would give the same ids', async () => {
    await mkdir(join(dir, 'a'), { recursive: true });
    await mkdir(join(dir, 'b'), { recursive: true });
    await writeFile(join(dir, 'a', 'x.jsonl'), '{"text": "a"}\n');
    await writeFile(join(dir, 'b', 'x.jsonl'), '{"text": "b"}\n');
    await expect(expandInputs([join(dir, 'a', 'x.jsonl'), join(dir, 'b', 'x.jsonl')])).rejects.toThrow(
      `${join(dir, 'a', 'x.jsonl')} and ${join(dir, 'b', 'x.jsonl')} are both named "x.jsonl"`,
    );
    // The same file twice is the same file.
    expect(
      await expandInputs([join(dir, 'a', 'x.jsonl'), join(dir, 'a', '..', 'a', 'x.jsonl')]),
    ).toHaveLength(2);
  });

  it('reads only the shards of a megadocs output directory, not its index, manifest or journal', async () => {
    const shards = await expandInputs([join(dir, 'out-file-1')]);
    expect(shards.map((shard) => shard.stableName)).toEqual(['out-file-1/shard.00000.jsonl.zst']);
  });
});

describe('KeyLocations', () => {
  it('finds every key it was given (also after growing), and no other', () => {
    const locations = new KeyLocations(4);
    const key = (index: number) => index.toString(16).padStart(8, '0').repeat(4);
    for (let index = 0; index < 5000; index += 1) {
      locations.add(key(index), { segment: index % 7, offset: index * 1_000_003, length: index + 1 });
    }
    locations.add(key(3), { segment: 6, offset: 1, length: 1 }); // the first location wins
    expect(locations.size).toBe(5000);
    for (let index = 0; index < 5000; index += 1) {
      expect(locations.get(key(index))).toEqual({
        segment: index % 7,
        offset: index * 1_000_003,
        length: index + 1,
      });
    }
    expect(locations.get(key(5000))).toBeUndefined();
  });
});
