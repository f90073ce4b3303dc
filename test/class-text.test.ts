// Class texts: the rewritten split regexes find exactly the pieces the Unicode regexes find, on random strings
// drawn from every class the regexes tell apart, for each encoding and DeepSeek-V3's Split regexes (punctuation and
// symbol classes); and regexes the rewrite does not cover are refused.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CL100K_TOKEN_SPLIT_REGEX,
  O200K_TOKEN_SPLIT_REGEX,
  R50K_TOKEN_SPLIT_REGEX,
} from 'gpt-tokenizer/encodingParams/constants';
import { describe, expect, it } from 'vitest';
import { ClassTexts, classTextRegex } from '../lib/tokenize/class-text.js';
import { splitPatternRegex } from '../lib/tokenize/split-pattern.js';
import { npmModelDir } from './helpers/npm-tokenizers.js';

/** Characters of every class: ASCII letters (contraction letters too), digits, white space, and non-ASCII ones. */
const PALETTE = [
  ..."aAsStTdDmMlLvVeErRzZ09 \t\n\r\v\f'/.,!?-_(#\x00\x1f$+<=>^`|~",
  'é', // Ll
  'É', // Lu
  'ǅ', // Lt
  'ʰ', // Lm
  '中', // Lo
  '\u0301', // Mn
  '\u0903', // Mc
  '٣', // Nd
  'Ⅻ', // Nl
  '½', // No
  '\u00a0', // White_Space (Zs)
  '\u0085', // White_Space (Cc)
  '\u2028', // White_Space (Zl)
  '\u3000', // White_Space (Zs)
  '—', // Pd
  '’', // Pf
  '€', // Sc
  '\ufeff', // Cf
  '\ue000', // Co
  '\u0378', // Cn
];

/** A seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pieces(regex: RegExp, scanned: string): number[] {
  const ends: number[] = [];
  for (let start = 0; start < scanned.length; ) {
    regex.lastIndex = start;
    if (!regex.test(scanned)) {
      start += 1;
      continue;
    }
    start = regex.lastIndex;
    ends.push(start);
  }
  return ends;
}

/** The regexes as the encoders use them: tiktoken's \s is Unicode White_Space. */
function tiktokenSplit(regex: RegExp): RegExp {
  const source = regex.source.replaceAll('\\s', '\\p{White_Space}').replaceAll('\\S', '\\P{White_Space}');
  return new RegExp(source, regex.flags);
}

/** DeepSeek-V3's Split regexes that have class texts (its CJK ranges have none), as the encoder runs them. */
const deepSeekSplits = (
  JSON.parse(readFileSync(path.join(npmModelDir('deepseek_v3'), 'tokenizer.json'), 'utf8')).pre_tokenizer
    .pretokenizers as { pattern?: { Regex: string } }[]
).flatMap((step) => (step.pattern ? [splitPatternRegex(step.pattern.Regex)] : []));

describe.each([
  ['o200k_base', tiktokenSplit(O200K_TOKEN_SPLIT_REGEX)],
  ['cl100k_base', tiktokenSplit(CL100K_TOKEN_SPLIT_REGEX)],
  ['r50k_base', tiktokenSplit(R50K_TOKEN_SPLIT_REGEX)],
  ['DeepSeek-V3 numbers', deepSeekSplits[0]!],
  ['DeepSeek-V3 words', deepSeekSplits[2]!],
])('class text of the %s split regex', (_name, regex) => {
  const unicode = new RegExp(regex.source, 'uy');
  const rewritten = classTextRegex(regex);

  it('finds the same pieces as the Unicode regex on 20,000 random strings of every class', () => {
    expect(rewritten).toBeDefined();
    const texts = new ClassTexts();
    const next = random(42);
    const mismatches: string[] = [];
    for (let round = 0; round < 20_000 && mismatches.length < 5; round++) {
      const length = 1 + Math.floor(next() * 24);
      const text = Array.from({ length }, () => PALETTE[Math.floor(next() * PALETTE.length)]).join('');
      const classText = texts.of(text)!;
      expect(classText).toHaveLength(text.length);
      const expected = pieces(unicode, text);
      if (JSON.stringify(pieces(rewritten!, classText)) !== JSON.stringify(expected))
        mismatches.push(JSON.stringify(text));
    }
    expect(mismatches).toEqual([]);
  });
});

describe('class texts', () => {
  it('keep ASCII texts as they are and give up on texts with surrogates', () => {
    const texts = new ClassTexts();
    expect(texts.of('plain ASCII, 123\n')).toBe('plain ASCII, 123\n');
    expect(texts.of('emoji 👋')).toBeUndefined();
    expect(texts.of('lone \ud800')).toBeUndefined();
    expect(texts.of('café')).toBe('caf\x82');
  });

  it('refuse regexes whose meaning the rewrite does not cover', () => {
    expect(classTextRegex(/\p{Sc}+/u)).toBeUndefined();
    // A range's non-ASCII ends stand for characters no text names literally.
    expect(classTextRegex(/[\u4e00-\u9fa5]+/u)).toBeUndefined();
    expect(classTextRegex(deepSeekSplits[1]!)).toBeUndefined();
    expect(classTextRegex(/\s+\p{L}/u)).toBeUndefined();
    expect(classTextRegex(/a.b/u)).toBeUndefined();
    expect(classTextRegex(/\p{L}+/iu)).toBeUndefined();
    expect(classTextRegex(/[^\P{White_Space}]/u)).toBeUndefined();
  });
});
