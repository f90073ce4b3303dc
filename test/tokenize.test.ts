// Encoders against the reference (OpenAI's tiktoken, wasm build) on tricky strings and real documents,
// the Llama 3 rank file in both of its forms, and the errors for bad specs and bad rank files.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { get_encoding, Tiktoken } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MegadocsError } from '../lib/errors.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { toAsyncIterable } from '../lib/stream.js';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(here, '../../shared');
const llamaFile = path.join(shared, 'tokenizers/meta-llama-3-8B.tiktoken');
const LLAMA = `tiktoken:${llamaFile}`;

async function jsonlTexts(file: string, count: number): Promise<string[]> {
  const lines = (await readFile(path.join(shared, 'data', file), 'utf8')).split('\n').filter(Boolean);
  return lines.slice(0, count).map((line) => JSON.parse(line).text as string);
}

async function parquetTexts(file: string, textField: string): Promise<string[]> {
  const texts: string[] = [];
  const docs = readDocs(await expandInputs([path.join(shared, 'data', file)]), { textField });
  for await (const doc of toAsyncIterable(docs)) texts.push(doc.text);
  return texts;
}

const TRICKY = [
  'Hello world',
  '   leading spaces and trailing   ',
  'tabs\t\tand\t \t mixed \u00a0 no-break\u2003em space',
  'line\n\nbreaks\r\n\r\n\n\n\n   \n  indented\n',
  '\n\n\n\n\n\n\n\n',
  '1234567890 3.14159 1,000,000 0x1F 2024-05-01',
  '你好，世界。日本語のテキストも。한국어 텍스트',
  'emoji 👋🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and 🤖!',
  'function f(x) {\n  return x ** 2; // square\n}\n\tif (a && b) { console.log("ok"); }',
  "it's I'LL we've they're DON'T",
  'café naïve résumé Ångström Zoë crème brûlée',
  '<|endoftext|>',
  'text <|endoftext|> more <|endofprompt|> <|begin_of_text|><|end_of_text|><|eot_id|>',
  '\uFEFF',
  '\uFEFFHello world',
  '\uFEFF#include <stdio.h>\n',
  'x\n\uFEFF\n\uFEFF\n\n',
  ' \uFEFF\uFEFF  x \uFEFF',
  'a\uFEFFb \uFEFFusing System;\uFEFFnamespace',
  'next\u0085line \u0085\u0085 x',
  'zero\u200bwidth\u200d joiner \u2028\u2029 separators \u3000 ideographic',
  ' ',
  '',
];

interface Reference {
  encode_ordinary(text: string): Uint32Array;
  free(): void;
}

async function llamaReference(): Promise<Reference> {
  const registry = JSON.parse(
    await readFile(path.resolve(here, '../node_modules/tiktoken/registry.json'), 'utf8'),
  );
  const ranks = (await readFile(llamaFile, 'utf8')).split('\n').slice(0, 128_000).join('\n');
  return new Tiktoken(
    ranks,
    { '<|begin_of_text|>': 128_000, '<|end_of_text|>': 128_001 },
    registry.cl100k_base.pat_str,
  );
}

/** Indices of the texts whose ids differ from the reference's (an empty list is a pass). */
function differences(encoder: Encoder, reference: Reference, texts: string[]): number[] {
  return texts.flatMap((text, index) => {
    const ours = Uint32Array.from(encoder.encode(text));
    const theirs = reference.encode_ordinary(text);
    return Buffer.compare(
      Buffer.from(ours.buffer),
      Buffer.from(theirs.buffer, theirs.byteOffset, theirs.byteLength),
    ) === 0
      ? []
      : [index];
  });
}

function roundTripFailures(encoder: Encoder, texts: string[]): number[] {
  return texts.flatMap((text, index) => (encoder.decode(encoder.encode(text)) === text ? [] : [index]));
}

/** Some real documents with U+FEFF inserted at a few seeded positions (BOMs left in pasted text). */
function withBoms(texts: string[]): string[] {
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  return texts.map((text) => {
    let out = text;
    for (let insert = 0; insert < 3; insert++) {
      const at = Math.floor(random() * out.length);
      out = `${out.slice(0, at)}\uFEFF${out.slice(at)}`;
    }
    return `\uFEFF${out}`;
  });
}

describe('encoders match tiktoken', async () => {
  const fineweb = await jsonlTexts('fineweb-300.jsonl', 200);
  const wikipedia = await jsonlTexts('wikipedia-2349.jsonl', 150);
  const commonCrawl = await parquetTexts('cc-warc-100.zstd.parquet', 'contents');
  const cases: [spec: string, reference: () => Promise<Reference>][] = [
    ['o200k_base', async () => get_encoding('o200k_base')],
    ['cl100k_base', async () => get_encoding('cl100k_base')],
    ['r50k_base', async () => get_encoding('gpt2')],
    [LLAMA, llamaReference],
  ];

  describe.each(cases)('%s', (spec, makeReference) => {
    let encoder: Encoder;
    let reference: Reference;
    beforeAll(async () => {
      [encoder, reference] = await Promise.all([loadEncoder(spec), makeReference()]);
    });
    afterAll(() => reference.free());

    it('gives the same ids on whitespace, digits, CJK, emoji, code, accents, special-token text and U+FEFF', () => {
      expect(differences(encoder, reference, TRICKY)).toEqual([]);
      expect(roundTripFailures(encoder, TRICKY)).toEqual([]);
    });

    it('gives the same ids on real documents (fineweb, wikipedia, multilingual Common Crawl), and decodes them back', () => {
      const texts = [...fineweb, ...wikipedia, ...commonCrawl];
      expect(differences(encoder, reference, texts)).toEqual([]);
      expect(roundTripFailures(encoder, texts)).toEqual([]);
    });

    it('gives the same ids on real documents with byte order marks inside', () => {
      const texts = withBoms(wikipedia.slice(0, 60));
      expect(differences(encoder, reference, texts)).toEqual([]);
      expect(roundTripFailures(encoder, texts)).toEqual([]);
    });

    it('does not throw on lone surrogates (text cut inside a pair) and encodes them as tiktoken does', () => {
      const broken = ['a\uD800b', 'x \uDC00\uDC00 y', '\uD83D', `${'emoji 👋'.slice(0, -1)}`];
      expect(differences(encoder, reference, broken)).toEqual([]);
    });

    it('encodes special-token strings as plain text and never emits EOS from text', () => {
      const text = 'before <|endoftext|> after <|end_of_text|>';
      const ids = encoder.encode(text);
      expect(ids).not.toContain(encoder.eosId);
      expect(encoder.decode(ids)).toBe(text);
      expect(encoder.decode([encoder.eosId])).toMatch(/^<\|end(oftext|_of_text)\|>$/);
    });

    it('keeps every id below vocabSize', () => {
      const largest = [...fineweb, ...TRICKY].reduce(
        (max, text) => Math.max(max, ...encoder.encode(text)),
        0,
      );
      expect(largest).toBeLessThan(encoder.vocabSize);
      expect(encoder.eosId).toBeLessThan(encoder.vocabSize);
    });
  });

  it('uses the end-of-text id that tiktoken assigns', async () => {
    for (const [spec, name] of [
      ['o200k_base', 'o200k_base'],
      ['cl100k_base', 'cl100k_base'],
      ['r50k_base', 'gpt2'],
    ] as const) {
      const reference = get_encoding(name);
      const [id] = reference.encode('<|endoftext|>', 'all');
      reference.free();
      const encoder = await loadEncoder(spec);
      expect(encoder.eosId).toBe(id);
      expect(encoder.bosId).toBeUndefined();
    }
    expect((await loadEncoder('r50k_base')).vocabSize).toBeLessThanOrEqual(65_536);
  });
});

describe('Llama 3 from a tiktoken rank file', async () => {
  const texts = [
    ...(await jsonlTexts('fineweb-300.jsonl', 100)),
    ...(await jsonlTexts('wikipedia-2349.jsonl', 100)),
  ];
  let llama: Encoder;
  let cl100k: Encoder;
  beforeAll(async () => {
    [llama, cl100k] = await Promise.all([loadEncoder(LLAMA), loadEncoder('cl100k_base')]);
  });

  it('has the Llama 3 special ids, read from the file', async () => {
    const lines = (await readFile(llamaFile, 'utf8')).split('\n');
    const nameOfRank = (rank: number) => Buffer.from(lines[rank]!.split(' ')[0]!, 'base64').toString();
    expect(llama.bosId).toBeDefined();
    expect(nameOfRank(llama.bosId!)).toBe('<|begin_of_text|>');
    expect(nameOfRank(llama.eosId)).toBe('<|end_of_text|>');
    expect(llama.decode([llama.bosId!, llama.eosId])).toBe('<|begin_of_text|><|end_of_text|>');
    expect(llama.vocabSize).toBe(lines.filter(Boolean).length);
  });

  it("shares cl100k_base's first 100,256 ranks: cl100k ids decode the same, and equal Llama's where no later merge applies", () => {
    expect(roundTripFailures({ ...llama, encode: cl100k.encode }, texts)).toEqual([]);
    const unmerged = texts.filter((text) => llama.encode(text).every((id) => id < 100_256));
    expect(unmerged.length).toBeGreaterThan(texts.length / 4);
    const mismatched = unmerged.filter((text) => llama.encode(text).join() !== cl100k.encode(text).join());
    expect(mismatched).toEqual([]);
  });

  it('loads a rank file without special-token lines (as Meta ships it) to the same encoder', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'megadocs-tiktoken-'));
    const file = path.join(directory, 'ordinary-only.tiktoken');
    await writeFile(file, (await readFile(llamaFile, 'utf8')).split('\n').slice(0, 128_000).join('\n'));
    const ordinaryOnly = await loadEncoder(`tiktoken:${file}`);
    expect([ordinaryOnly.bosId, ordinaryOnly.eosId, ordinaryOnly.vocabSize]).toEqual([
      llama.bosId,
      llama.eosId,
      llama.vocabSize,
    ]);
    const mismatched = texts.filter((text) => ordinaryOnly.encode(text).join() !== llama.encode(text).join());
    expect(mismatched).toEqual([]);
  });
});

describe('errors', () => {
  async function rankFileError(contents: string): Promise<{ error: MegadocsError; file: string }> {
    const directory = await mkdtemp(path.join(tmpdir(), 'megadocs-tiktoken-'));
    const file = path.join(directory, 'bad.tiktoken');
    await writeFile(file, contents);
    const error = await loadEncoder(`tiktoken:${file}`).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MegadocsError);
    return { error: error as MegadocsError, file };
  }
  const byteLines = Array.from(
    { length: 256 },
    (_, byte) => `${Buffer.from([byte]).toString('base64')} ${byte}`,
  );

  it('names the accepted tokenizers for an unknown spec', async () => {
    const error = await loadEncoder('llama3').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MegadocsError);
    expect((error as MegadocsError).message).toMatch(
      /"llama3".*o200k_base, cl100k_base, r50k_base.*tiktoken:PATH/,
    );
  });

  it('names the file when it cannot be read', async () => {
    const error = await loadEncoder('tiktoken:/nonexistent/llama.tiktoken').catch(
      (caught: unknown) => caught,
    );
    expect((error as MegadocsError).code).toBe('TOKENIZER');
    expect((error as MegadocsError).message).toContain('/nonexistent/llama.tiktoken');
  });

  it('names the file and line of a malformed line', async () => {
    const { error, file } = await rankFileError(
      [...byteLines.slice(0, 2), 'not base64!! 2', ...byteLines].join('\n'),
    );
    expect(error.message).toContain(`${file}:3`);
    expect(error.message).toContain('BASE64_TOKEN RANK');
  });

  it('names the line of a duplicated rank, and of a special-token line that is not Llama 3 convention', async () => {
    const duplicate = await rankFileError(
      [...byteLines, `${Buffer.from('ab').toString('base64')} 7`].join('\n'),
    );
    expect(duplicate.error.message).toContain(`${duplicate.file}:257`);
    const special = await rankFileError(
      [...byteLines, `${Buffer.from('<|end_of_text|>').toString('base64')} 128000`].join('\n'),
    );
    expect(special.error.message).toContain(`${special.file}:257`);
    expect(special.error.message).toContain('<|begin_of_text|>');
  });

  it('rejects a rank file that cannot encode every byte', async () => {
    const { error, file } = await rankFileError(byteLines.slice(0, 255).join('\n'));
    expect(error.message).toContain(file);
    expect(error.message).toContain('0xff');
  });
});
