// The piece encoder against gpt-tokenizer's own encodeNative on real documents: with its default cache, with a
// cache so small that it is emptied over and over, and on pieces too long to cache; and the room it needs.
import { readFile } from 'node:fs/promises';
import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore';
import { CL100K_TOKEN_SPLIT_REGEX, O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';
import { describe, expect, it } from 'vitest';
import {
  buildPieceVocabulary,
  createPieceEncoder,
  MAX_IDS_PER_UNIT,
  type PieceEncoderParts,
} from '../lib/tokenize/piece-encoder.js';
import { SHARED_DATA } from './helpers/cli.js';

async function realTexts(): Promise<string[]> {
  const lines = (await readFile(`${SHARED_DATA}/wikipedia-2349.jsonl`, 'utf8')).split('\n').filter(Boolean);
  const fineweb = (await readFile(`${SHARED_DATA}/fineweb-300.jsonl`, 'utf8')).split('\n').filter(Boolean);
  return [...lines.slice(0, 300), ...fineweb.slice(0, 100)].map((line) => JSON.parse(line).text as string);
}

function encodeAll(parts: PieceEncoderParts, texts: string[]): number[][] {
  const encode = createPieceEncoder(parts);
  return texts.map((text) => {
    const out = new Uint32Array(text.length * MAX_IDS_PER_UNIT);
    return Array.from(out.subarray(0, encode(text, out, 0)));
  });
}

describe.each([
  ['o200k_base', O200K_TOKEN_SPLIT_REGEX],
  ['cl100k_base', CL100K_TOKEN_SPLIT_REGEX],
] as const)('piece encoder, %s', async (name, splitRegex) => {
  const ranks = (await import(`gpt-tokenizer/bpeRanks/${name}`)).default;
  const core = new BytePairEncodingCore({ bytePairRankDecoder: ranks, tokenSplitRegex: splitRegex });
  const merge = (piece: string) =>
    (core as unknown as { bytePairEncode(piece: string): number[] }).bytePairEncode(piece);
  const texts = await realTexts();
  const expected = texts.map((text) => core.encodeNative(text));

  it('gives the core’s ids on real documents', () => {
    expect(encodeAll({ vocabulary: buildPieceVocabulary(ranks), splitRegex, merge }, texts)).toEqual(
      expected,
    );
  });

  it('gives the same ids when its cache of merged pieces is emptied every few pieces', () => {
    expect(encodeAll({ vocabulary: buildPieceVocabulary(ranks, 3), splitRegex, merge }, texts)).toEqual(
      expected,
    );
  });

  it('merges pieces too long to cache every time, and repeats their ids exactly', () => {
    const long = `${'x'.repeat(100)}${'9'.repeat(7)} ${'ab'.repeat(80)}!!${'?'.repeat(70)}`;
    const twice = `${long} ${long}`;
    expect(encodeAll({ vocabulary: buildPieceVocabulary(ranks), splitRegex, merge }, [twice])).toEqual([
      core.encodeNative(twice),
    ]);
  });

  it('writes from the given index and never needs more than MAX_IDS_PER_UNIT ids per UTF-16 unit', () => {
    const encode = createPieceEncoder({ vocabulary: buildPieceVocabulary(ranks), splitRegex, merge });
    // Rare CJK and lone surrogates fall back to byte tokens: the most ids per unit a text can take.
    const worst = '\uD800\uDFFF\u9FA5\u4DB5\uD800';
    const out = new Uint32Array(2 + worst.length * MAX_IDS_PER_UNIT).fill(7);
    const end = encode(worst, out, 2);
    expect(out.subarray(0, 2)).toEqual(new Uint32Array([7, 7]));
    expect(Array.from(out.subarray(2, end))).toEqual(core.encodeNative(worst));
    expect(end).toBeLessThanOrEqual(out.length);
  });
});
