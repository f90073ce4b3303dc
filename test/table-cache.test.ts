// The on-disk cache of token tables: written on first use, read back (in shared memory) with the same ids, a
// truncated or foreign file rebuilt, one file per rank-file content, and no cache when the directory is
// unusable or MEGADOCS_CACHE_DIR is off.
import { copyFile, mkdir, mkdtemp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runtimeOptionsFromEnv } from '../bin/environment.js';
import { loadEncoder, loadTokenTables as loadTables, tokenizerFacts } from '../lib/tokenize/encoders.js';
import { idEncoder, type TokenTables } from '../lib/tokenize/token-tables.js';
import { SHARED_TOKENIZERS } from './helpers/cli.js';
import { npmModelDir } from './helpers/npm-tokenizers.js';

const LLAMA_FILE = path.join(SHARED_TOKENIZERS, 'meta-llama-3-8B.tiktoken');
const SAMPLE = 'Cached tables, the same ids: naïve café 12345 <|endoftext|>\n\n  indented';

function ids(tables: TokenTables, text = SAMPLE): number[] {
  const out = new Uint32Array(text.length * 3);
  return Array.from(out.subarray(0, idEncoder(tables).encodeInto(text, out, 0)));
}

/** The tables with the cache the CLI would use under this environment (MEGADOCS_CACHE_DIR). */
const loadTokenTables = (spec: string) => loadTables(spec, runtimeOptionsFromEnv(process.env).cacheDir);

async function cacheDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-cache-'));
  process.env.MEGADOCS_CACHE_DIR = dir;
  return dir;
}

async function cachedFiles(dir: string): Promise<string[]> {
  return readdir(path.join(dir, 'tokenizers')).catch(() => []);
}

afterEach(() => {
  delete process.env.MEGADOCS_CACHE_DIR;
});

describe('token table cache', () => {
  it('writes the tables on first use and reads them back with the same ids', async () => {
    const dir = await cacheDir();
    const built = await loadTokenTables('r50k_base');
    const [file] = await cachedFiles(dir);
    expect(file).toMatch(/^r50k_base-gpt-tokenizer-[\d.]+\.v\d+\.tables$/);
    const cached = await loadTokenTables('r50k_base');
    expect(cached.pieces.slots.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(cached.facts).toEqual(built.facts);
    expect(Buffer.from(cached.bytes.bytes).equals(Buffer.from(built.bytes.bytes))).toBe(true);
    expect(ids(cached)).toEqual((await loadEncoder('r50k_base')).encode(SAMPLE));
  });

  it('rebuilds a truncated file and one that is not a tables file', async () => {
    const dir = await cacheDir();
    await loadTokenTables('r50k_base');
    const [name] = await cachedFiles(dir);
    const file = path.join(dir, 'tokenizers', name!);
    const { size } = await stat(file);
    const expected = (await loadEncoder('r50k_base')).encode(SAMPLE);
    await truncate(file, size - 100);
    expect(ids(await loadTokenTables('r50k_base'))).toEqual(expected);
    expect((await stat(file)).size).toBe(size);
    await writeFile(file, 'not tables');
    expect(ids(await loadTokenTables('r50k_base'))).toEqual(expected);
    expect((await stat(file)).size).toBe(size);
  });

  it('keys a tiktoken rank file by its content, not its path', async () => {
    const dir = await cacheDir();
    const copy = path.join(dir, 'llama.tiktoken');
    await copyFile(LLAMA_FILE, copy);
    const original = await loadTokenTables(`tiktoken:${LLAMA_FILE}`);
    await loadTokenTables(`tiktoken:${copy}`);
    expect(await cachedFiles(dir)).toHaveLength(1);
    expect(ids(original)).toEqual((await loadEncoder(`tiktoken:${LLAMA_FILE}`)).encode(SAMPLE));
  });

  it("caches a tokenizer.json's facts by its files' contents, and gives the same facts as a read of the file", async () => {
    const dir = await cacheDir();
    const model = path.join(dir, 'qwen3');
    await mkdir(model);
    for (const name of ['tokenizer.json', 'tokenizer_config.json'])
      await copyFile(path.join(npmModelDir('qwen3'), name), path.join(model, name));
    const read = await tokenizerFacts(model, undefined, false);
    expect(await tokenizerFacts(model, undefined, dir)).toEqual(read);
    const [head] = (await cachedFiles(dir)).filter((name) => name.endsWith('-head.v4.json'));
    expect(head).toBeDefined();
    expect(await tokenizerFacts(model, undefined, dir)).toEqual(read);
    // --eos-token is looked up among the cached added tokens.
    expect(await tokenizerFacts(model, '<|endoftext|>', dir)).toEqual(
      await tokenizerFacts(model, '<|endoftext|>', false),
    );
    // Another eos_token in tokenizer_config.json is another file: read again, cached beside the first.
    const configFile = path.join(model, 'tokenizer_config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    await writeFile(configFile, JSON.stringify({ ...config, eos_token: '<|endoftext|>' }));
    const changed = await tokenizerFacts(model, undefined, dir);
    expect(changed).toEqual(await tokenizerFacts(model, undefined, false));
    expect(changed.eosToken).toBe('<|endoftext|>');
    expect((await cachedFiles(dir)).filter((name) => name.endsWith('-head.v4.json'))).toHaveLength(2);
  });

  it('works without a cache when the directory cannot be written or the cache is off', async () => {
    const dir = await cacheDir();
    const blocker = path.join(dir, 'a-file');
    await writeFile(blocker, '');
    process.env.MEGADOCS_CACHE_DIR = blocker;
    const expected = (await loadEncoder('r50k_base')).encode(SAMPLE);
    expect(ids(await loadTokenTables('r50k_base'))).toEqual(expected);
    process.env.MEGADOCS_CACHE_DIR = 'off';
    expect(ids(await loadTokenTables('r50k_base'))).toEqual(expected);
    expect(await cachedFiles(dir)).toEqual([]);
  });
});
