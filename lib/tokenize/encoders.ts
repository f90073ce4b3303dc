// Text <-> token ids for the named encodings (o200k_base, cl100k_base, r50k_base, tiktoken:PATH for Llama 3),
// on gpt-tokenizer's rank tables and byte-pair merge, with two fixes that make the ids equal OpenAI tiktoken's,
// split and looked up by piece-encoder.ts.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RawBytePairRanks } from 'gpt-tokenizer/BytePairEncodingCore';
import {
  CL100K_TOKEN_SPLIT_REGEX,
  O200K_TOKEN_SPLIT_REGEX,
  R50K_TOKEN_SPLIT_REGEX,
} from 'gpt-tokenizer/encodingParams/constants';
import { MegadocsError } from '../errors.js';
import { dependencyVersion } from '../version.js';
import { MAX_IDS_PER_UNIT } from './piece-encoder.js';
import { type CacheDir, cachedTokenTables } from './table-cache.js';
import { LLAMA3_BEGIN_OF_TEXT, LLAMA3_END_OF_TEXT, readTiktokenFile } from './tiktoken-file.js';
import { buildTokenTables, idEncoder, type TokenTables } from './token-tables.js';

export interface Encoder {
  /** The spec it was loaded from. */
  name: string;
  /** Largest id + 1, special tokens included (ids fit in uint16 when this is at most 65,536). */
  vocabSize: number;
  eosId: number;
  bosId?: number;
  /** Plain text: special-token strings such as `<|endoftext|>` are encoded as ordinary text; never throws. */
  encode(text: string): number[];
  /**
   * encode() without allocating: writes the ids into `out` from `at` and returns the index after the last;
   * `out` needs room for MAX_IDS_PER_UNIT ids per UTF-16 unit of `text`.
   */
  encodeInto(text: string, out: Uint32Array, at: number): number;
  decode(ids: ArrayLike<number>): string;
}

export const DEFAULT_TOKENIZER = 'o200k_base';
export const TOKENIZER_NAMES = ['o200k_base', 'cl100k_base', 'r50k_base'] as const;
export const TIKTOKEN_PREFIX = 'tiktoken:';
const END_OF_TEXT = '<|endoftext|>';

interface EncodingParts {
  ranks: RawBytePairRanks;
  splitRegex: RegExp;
  specialTokens: Map<string, number>;
  eos: string;
  bos?: string;
}

/** Loads an encoder; rejects with a MegadocsError naming the accepted specs when `spec` is none of them. */
export async function loadEncoder(spec: string): Promise<Encoder> {
  return buildEncoder(spec, await loadParts(spec));
}

/** Throws unless `spec` names a known encoding or has the `tiktoken:PATH` form (the file is read later). */
export function checkTokenizerSpec(spec: string): void {
  if ((TOKENIZER_NAMES as readonly string[]).includes(spec)) return;
  if (spec.startsWith(TIKTOKEN_PREFIX) && spec.length > TIKTOKEN_PREFIX.length) return;
  throw new MegadocsError('BAD_OPTION', `unknown tokenizer ${JSON.stringify(spec)}`, {
    where: 'tokenizer',
    hint: `Use one of ${TOKENIZER_NAMES.join(', ')} (default ${DEFAULT_TOKENIZER}), or tiktoken:PATH for a Llama 3 tiktoken rank file`,
  });
}

async function loadParts(spec: string): Promise<EncodingParts> {
  checkTokenizerSpec(spec);
  switch (spec) {
    case 'o200k_base':
      return openAiParts(
        (await import('gpt-tokenizer/bpeRanks/o200k_base')).default,
        O200K_TOKEN_SPLIT_REGEX,
        (await import('gpt-tokenizer/encodingParams/o200k_base')).createO200KSpecialTokenMap(),
      );
    case 'cl100k_base': {
      const ranks = (await import('gpt-tokenizer/bpeRanks/cl100k_base')).default;
      const { Cl100KBase } = await import('gpt-tokenizer/encodingParams/cl100k_base');
      return openAiParts(ranks, CL100K_TOKEN_SPLIT_REGEX, Cl100KBase(ranks).specialTokensEncoder);
    }
    case 'r50k_base': {
      const ranks = (await import('gpt-tokenizer/bpeRanks/r50k_base')).default;
      const { R50KBase } = await import('gpt-tokenizer/encodingParams/r50k_base');
      return openAiParts(ranks, R50K_TOKEN_SPLIT_REGEX, R50KBase(ranks).specialTokensEncoder);
    }
  }
  const file = await readTiktokenFile(spec.slice(TIKTOKEN_PREFIX.length));
  return {
    ranks: file.ranks,
    splitRegex: CL100K_TOKEN_SPLIT_REGEX,
    specialTokens: file.specialTokens,
    eos: LLAMA3_END_OF_TEXT,
    bos: LLAMA3_BEGIN_OF_TEXT,
  };
}

function openAiParts(ranks: RawBytePairRanks, splitRegex: RegExp, specialTokens: Map<string, number>) {
  return { ranks, splitRegex, specialTokens, eos: END_OF_TEXT };
}

/**
 * Fix 1, whitespace: JS `\s` matches U+FEFF and not U+0085; tiktoken's Rust regex `\s` is Unicode
 * White_Space (U+0085 yes, U+FEFF no). Spelling it `\p{White_Space}` gives tiktoken's pre-tokenization.
 */
function tiktokenSplitRegex(regex: RegExp): RegExp {
  const source = regex.source.replaceAll('\\s', '\\p{White_Space}').replaceAll('\\S', '\\P{White_Space}');
  return new RegExp(source, regex.flags);
}

function entryBytes(entry: string | readonly number[]): Buffer {
  return typeof entry === 'string' ? Buffer.from(entry) : Buffer.from(entry);
}

/**
 * The shared lookup tables of `spec`, for tokenizer workers (see token-tables.ts), from the cache in `cacheDir`
 * when there (see CacheDir: default ~/.cache/megadocs).
 */
export async function loadTokenTables(spec: string, cacheDir?: CacheDir): Promise<TokenTables> {
  checkTokenizerSpec(spec);
  const build = async () => tablesOf(await loadParts(spec));
  if (!spec.startsWith(TIKTOKEN_PREFIX)) {
    return cachedTokenTables(`${spec}-gpt-tokenizer-${dependencyVersion('gpt-tokenizer')}`, build, cacheDir);
  }
  let contents: Buffer;
  try {
    contents = await readFile(spec.slice(TIKTOKEN_PREFIX.length));
  } catch {
    return build(); // reading the rank file again reports the error, naming the file
  }
  return cachedTokenTables(
    `tiktoken-${createHash('sha256').update(contents).digest('hex').slice(0, 32)}`,
    build,
    cacheDir,
  );
}

function tablesOf(parts: EncodingParts): TokenTables {
  return buildTokenTables(parts.ranks, tiktokenSplitRegex(parts.splitRegex), factsOf(parts));
}

function buildEncoder(name: string, parts: EncodingParts): Encoder {
  const encodePieces = idEncoder(tablesOf(parts)).encodeInto;
  return {
    name,
    ...factsOf(parts),
    encode: (text) => {
      const ids = new Uint32Array(text.length * MAX_IDS_PER_UNIT);
      return Array.from(ids.subarray(0, encodePieces(text, ids, 0)));
    },
    encodeInto: encodePieces,
    decode: makeDecoder(parts),
  };
}

/** What a writer needs to know of a tokenizer without encoding anything. */
export interface TokenizerFacts {
  vocabSize: number;
  eosId: number;
  bosId?: number;
}

function factsOf(parts: EncodingParts): TokenizerFacts {
  const maxSpecial = Math.max(...parts.specialTokens.values());
  return {
    vocabSize: Math.max(parts.ranks.length, maxSpecial + 1),
    eosId: specialId(parts, parts.eos),
    bosId: parts.bos === undefined ? undefined : specialId(parts, parts.bos),
  };
}

/** The named encodings' facts, so the main thread need not import their rank tables (a test checks them). */
const NAMED_FACTS: Record<(typeof TOKENIZER_NAMES)[number], TokenizerFacts> = {
  o200k_base: { vocabSize: 200_007, eosId: 199_999 },
  cl100k_base: { vocabSize: 100_277, eosId: 100_257 },
  r50k_base: { vocabSize: 50_257, eosId: 50_256 },
};

/**
 * Vocabulary size and EOS/BOS ids of `spec`. Unlike loadEncoder this keeps nothing loaded: importing a named
 * encoding's ranks pins ~60 MB in the module cache, which the tokenizer workers already hold.
 */
export async function tokenizerFacts(spec: string): Promise<TokenizerFacts> {
  checkTokenizerSpec(spec);
  const named = NAMED_FACTS[spec as keyof typeof NAMED_FACTS];
  return named ?? factsOf(await loadParts(spec));
}

function specialId(parts: EncodingParts, token: string): number {
  return parts.specialTokens.get(token)!;
}

/**
 * Bytes of all ids, decoded once (the core's decoder drops a leading U+FEFF and keeps state across calls).
 * Special ids decode to their names; an unknown id is an error.
 */
function makeDecoder(parts: EncodingParts): (ids: ArrayLike<number>) => string {
  const specialNames = new Map([...parts.specialTokens].map(([token, id]) => [id, Buffer.from(token)]));
  const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  return (ids) => {
    const chunks: Buffer[] = [];
    for (let index = 0; index < ids.length; index++) {
      const id = ids[index]!;
      const entry = parts.ranks[id];
      const bytes = entry === undefined ? specialNames.get(id) : entryBytes(entry);
      if (!bytes) {
        throw new MegadocsError('TOKENIZER', `token id ${id} is not in the vocabulary`, {
          where: `ids[${index}]`,
          hint: 'Decode ids with the tokenizer that produced them',
        });
      }
      chunks.push(bytes);
    }
    return utf8.decode(Buffer.concat(chunks));
  };
}
