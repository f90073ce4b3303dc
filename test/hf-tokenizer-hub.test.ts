// `--tokenizer hf:ORG/REPO[@REV]` against the loopback Hub: downloaded into the Hugging Face cache layout,
// reused there with no network, a revision's own files, HF_TOKEN for a gated model, and clear errors.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveHubTokenizer } from '../lib/hub/tokenizer-download.js';
import { loadEncoder, tokenizerFacts } from '../lib/tokenize/encoders.js';
import { runCli } from './helpers/cli.js';
import { TEST_TOKEN } from './helpers/hub-repos.js';
import { type HubServer, startHubServer } from './helpers/hub-server.js';
import { npmModelDir } from './helpers/npm-tokenizers.js';
import { failure } from './helpers/sources.js';

const QWEN = npmModelDir('qwen3');
const BASE_CONFIG = Buffer.from(JSON.stringify({ eos_token: '<|endoftext|>', bos_token: null }));

describe('hf: tokenizers from a (loopback) Hub', () => {
  let hub: HubServer;
  let cache: string;
  const files = {
    'tokenizer.json': { disk: path.join(QWEN, 'tokenizer.json') },
    'tokenizer_config.json': { disk: path.join(QWEN, 'tokenizer_config.json') },
  };

  beforeAll(async () => {
    hub = await startHubServer({
      token: TEST_TOKEN,
      repos: [
        {
          id: 'acme/qwen-tok',
          type: 'model',
          revisions: {
            main: { ...files, 'README.md': { bytes: Buffer.from('# qwen\n') } },
            base: { ...files, 'tokenizer_config.json': { bytes: BASE_CONFIG } },
          },
        },
        { id: 'acme/gated-tok', type: 'model', gated: true, revisions: { main: files } },
        {
          id: 'acme/no-tok',
          type: 'model',
          revisions: { main: { 'model.gguf': { bytes: Buffer.alloc(10) } } },
        },
      ],
    });
  });
  afterAll(() => hub.close());
  beforeEach(async () => {
    cache = await mkdtemp(path.join(tmpdir(), 'megadocs-hf-cache-'));
  });

  const options = (token?: string) => ({
    hub: { endpoint: hub.url, token, retry: { baseDelayMs: 1 } },
    cacheDir: cache,
  });

  it('downloads tokenizer.json and tokenizer_config.json into models--ORG--REPO and encodes as the files do', async () => {
    const snapshot = await resolveHubTokenizer('hf:acme/qwen-tok', options());
    const storage = path.join(cache, 'models--acme--qwen-tok');
    const commit = (await readFile(path.join(storage, 'refs', 'main'), 'utf8')).trim();
    expect(snapshot).toBe(path.join(storage, 'snapshots', commit));
    const [got, sent] = await Promise.all(
      [snapshot, QWEN].map((dir) => readFile(path.join(dir, 'tokenizer.json'))),
    );
    expect(got!.equals(sent!)).toBe(true);
    expect(existsSync(path.join(snapshot, 'tokenizer_config.json'))).toBe(true);
    expect(existsSync(path.join(snapshot, 'README.md'))).toBe(false);
    // The same bytes as the local files (above): one encoder shows the downloaded copy loads and round-trips.
    const downloaded = await loadEncoder(snapshot);
    const text = 'Grüße aus Köln, 東京 and 12345 <|im_end|>';
    expect(downloaded.decode(downloaded.encode(text))).toBe(text);
    expect(downloaded.eosId).toBe(151_645);
  });

  it('takes a revision: its own tokenizer_config.json decides EOS', async () => {
    const main = await tokenizerFacts(await resolveHubTokenizer('hf:acme/qwen-tok', options()));
    const base = await tokenizerFacts(await resolveHubTokenizer('hf:acme/qwen-tok@base', options()));
    expect(main.eosId).toBe(151_645); // <|im_end|>
    expect(base.eosId).toBe(151_643); // <|endoftext|>
  });

  it('explains a gated model (HF_TOKEN, the terms), a model with no tokenizer.json and a missing revision', async () => {
    const gated = await failure(resolveHubTokenizer('hf:acme/gated-tok', options()));
    expect(gated.message).toContain('gated');
    expect(gated.hint).toContain('HF_TOKEN');
    expect(gated.hint).toContain(`${hub.url}/acme/gated-tok`);
    expect(existsSync(await resolveHubTokenizer('hf:acme/gated-tok', options(TEST_TOKEN)))).toBe(true);

    const none = await failure(resolveHubTokenizer('hf:acme/no-tok', options()));
    expect(none.message).toContain('the model acme/no-tok has no tokenizer.json at main');
    expect(none.where).toBe('hf:acme/no-tok');

    const revision = await failure(resolveHubTokenizer('hf:acme/qwen-tok@v9', options()));
    expect(revision.message).toContain('no revision "v9"');
  });

  it("takes the Hub options from the library's caller, never from the environment", async () => {
    // A spec this thread has not downloaded: the error says what to pass (HF_* variables are not read here).
    const error = await failure(loadEncoder('hf:acme/not-downloaded'));
    expect(error.message).toContain('was not downloaded: no Hub options were given');
    expect(error.hint).toContain('hubTokenizer');
    const encoder = await loadEncoder('hf:acme/qwen-tok@base', undefined, options());
    expect(encoder.eosId).toBe(151_643);
    // Once downloaded, later steps of the thread (facts, tables) find it without the options.
    expect((await tokenizerFacts('hf:acme/qwen-tok@base')).eosToken).toBe('<|endoftext|>');
  });

  it('packs with --tokenizer hf:..., then again from the cache with the Hub unreachable', async () => {
    const input = path.resolve(import.meta.dirname, '../fixtures/web-sample.jsonl');
    const out = await mkdtemp(path.join(tmpdir(), 'megadocs-hf-pack-'));
    const args = [
      'pack',
      input,
      '--tokenizer',
      'hf:acme/qwen-tok',
      '--seq-len',
      '64',
      '--workers',
      '1',
      '--quiet',
    ];
    const online = await runCli([...args, '--out', path.join(out, 'a')], {
      HF_ENDPOINT: hub.url,
      HF_HUB_CACHE: cache,
    });
    expect(online.stderr).toBe('');
    expect(online.code).toBe(0);
    const offline = await runCli([...args, '--out', path.join(out, 'b')], {
      HF_ENDPOINT: 'http://127.0.0.1:9',
      HF_HUB_CACHE: cache,
    });
    expect(offline.code).toBe(0);
    const shard = (dir: string) => readFile(path.join(out, dir, 'shard.00000.mds.zstd'));
    expect((await shard('b')).equals(await shard('a'))).toBe(true);
    const recorded = JSON.parse(await readFile(path.join(out, 'b', 'megadocs.json'), 'utf8'));
    expect(JSON.stringify(recorded)).toContain('"tokenizer":"hf:acme/qwen-tok"');
  });
});

describe('megadocs pack and inspect --decode with a tokenizer.json', () => {
  const input = path.resolve(import.meta.dirname, '../fixtures/web-sample.jsonl');

  it.each(['qwen3', 'llama2'] as const)(
    '%s: BOS as the model says, and the documents decode back',
    async (model) => {
      const out = await mkdtemp(path.join(tmpdir(), `megadocs-${model}-`));
      const packed = await runCli([
        'pack',
        input,
        '--out',
        out,
        '--tokenizer',
        npmModelDir(model),
        '--seq-len',
        '64',
        '--tail',
        'keep',
        '--workers',
        '1',
        '--quiet',
      ]);
      expect(packed.stderr).toBe('');
      expect(packed.code).toBe(0);
      const inspected = await runCli(['inspect', out, '--decode', '1000']);
      expect(inspected.code).toBe(0);
      const decoded = inspected.stdout
        .toString()
        .split(/--- sample \d+ ---\n/)
        .slice(1)
        .join('');
      // Each sample decodes on its own: a SentencePiece decoder strips the space its first token starts with.
      const first = JSON.parse((await readFile(input, 'utf8')).split('\n')[0]!).text as string;
      expect(decoded.replace(/\s/g, '')).toContain(first.replace(/\s/g, ''));
      // Llama 2 prepends <s> (add_bos_token); Qwen 3 has no BOS.
      expect(decoded.startsWith('<s>')).toBe(model === 'llama2');
    },
  );
});
