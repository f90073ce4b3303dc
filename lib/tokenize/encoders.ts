// Text <-> token ids for the named encodings (o200k_base, cl100k_base, r50k_base, tiktoken:PATH for Llama 3),
// on gpt-tokenizer's rank tables and byte-pair merge, with two fixes that make the ids equal OpenAI tiktoken's,
// and for Hugging Face tokenizer.json files (PATH, see tokenizer-json.ts); split and looked up by piece-encoder.ts.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RawBytePairRanks } from 'gpt-tokenizer/BytePairEncodingCore';
import {
  CL100K_TOKEN_SPLIT_REGEX,
  O200K_TOKEN_SPLIT_REGEX,
  R50K_TOKEN_SPLIT_REGEX,
} from 'gpt-tokenizer/encodingParams/constants';
import { MegadocsError } from '../errors.js';
import {
  HF_TOKENIZER_PREFIX,
  parseHubTokenizerSpec,
  resolveHubTokenizer,
  type TokenizerDownloadOptions,
} from '../hub/tokenizer-download.js';
import { dependencyVersion } from '../version.js';
import { MAX_IDS_PER_UNIT } from './piece-encoder.js';
import { type CacheDir, cachedJson, cachedTokenTables } from './table-cache.js';
import { LLAMA3_BEGIN_OF_TEXT, LLAMA3_END_OF_TEXT, readTiktokenFile } from './tiktoken-file.js';
import { buildTokenTables, idEncoder, type TokenTables } from './token-tables.js';
import {
  readTokenizerJson,
  TOKENIZER_CONFIG_JSON,
  TOKENIZER_JSON,
  tokenizerJsonPath,
} from './tokenizer-json.js';
import {
  type TokenizerJsonHead,
  tokenizerJsonFacts,
  tokenizerJsonHead,
  tokenizerJsonTables,
} from './tokenizer-json-tables.js';

export interface Encoder extends TokenizerFacts {
  /** The spec it was loaded from. */
  name: string;
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

/**
 * Loads an encoder; rejects with a MegadocsError naming the accepted specs when `spec` is none of them.
 * `eosToken` (--eos-token) replaces the model's EOS: one of its special or added tokens. An `hf:` spec is
 * downloaded with `hubTokenizer` (see prepareTokenizer).
 */
export async function loadEncoder(
  spec: string,
  eosToken?: string,
  hubTokenizer?: TokenizerDownloadOptions,
): Promise<Encoder> {
  await prepareTokenizer(spec, hubTokenizer);
  if (isTokenizerJsonSpec(spec)) return tokenizerJsonEncoder(spec, eosToken);
  return buildEncoder(spec, await loadParts(spec), eosToken);
}

/**
 * Whether `spec` is the path of a tokenizer.json or of a directory that holds one: it is not a named encoding
 * nor `tiktoken:PATH` nor `hf:...`, and it exists, ends with .json or names a folder (has a slash).
 */
export function isTokenizerJsonPath(spec: string): boolean {
  if ((TOKENIZER_NAMES as readonly string[]).includes(spec)) return false;
  if (spec.startsWith(TIKTOKEN_PREFIX) || spec.startsWith(HF_TOKENIZER_PREFIX)) return false;
  return spec.endsWith('.json') || /[\\/]/.test(spec) || existsSync(spec);
}

/** Whether `spec` names a tokenizer.json: a PATH, or a Hub model's (`hf:ORG/REPO[@REV]`). */
export function isTokenizerJsonSpec(spec: string): boolean {
  return spec.startsWith(HF_TOKENIZER_PREFIX) || isTokenizerJsonPath(spec);
}

/**
 * Downloads an `hf:` spec's files with `hubTokenizer` (unless in the Hugging Face cache), so that every later step
 * of this thread finds them (tokenizerJsonFile); other specs need nothing. A command's first step.
 */
export async function prepareTokenizer(spec: string, hubTokenizer?: TokenizerDownloadOptions): Promise<void> {
  if (spec.startsWith(HF_TOKENIZER_PREFIX) && hubTokenizer) await resolveHubTokenizer(spec, hubTokenizer);
}

/** `spec` as a worker thread can load it: an `hf:` spec is its downloaded directory (see prepareTokenizer). */
export async function localTokenizerSpec(spec: string): Promise<string> {
  return spec.startsWith(HF_TOKENIZER_PREFIX) ? resolveHubTokenizer(spec) : spec;
}

/** The local tokenizer.json of `spec` (an `hf:` spec's as prepareTokenizer downloaded it). */
export async function tokenizerJsonFile(spec: string): Promise<string> {
  if (spec.startsWith(HF_TOKENIZER_PREFIX)) return path.join(await resolveHubTokenizer(spec), TOKENIZER_JSON);
  return tokenizerJsonPath(spec);
}

/** Throws unless `spec` names a known encoding, `tiktoken:PATH` or a tokenizer.json PATH (files are read later). */
export function checkTokenizerSpec(spec: string): void {
  if ((TOKENIZER_NAMES as readonly string[]).includes(spec)) return;
  if (spec.startsWith(TIKTOKEN_PREFIX) && spec.length > TIKTOKEN_PREFIX.length) return;
  if (spec.startsWith(HF_TOKENIZER_PREFIX)) {
    parseHubTokenizerSpec(spec);
    return;
  }
  if (isTokenizerJsonPath(spec)) return;
  throw new MegadocsError('BAD_OPTION', `unknown tokenizer ${JSON.stringify(spec)}`, {
    where: 'tokenizer',
    hint: `Use one of ${TOKENIZER_NAMES.join(', ')} (default ${DEFAULT_TOKENIZER}), tiktoken:PATH for a Llama 3 tiktoken rank file, hf:ORG/REPO[@REV] for a Hub model's tokenizer, or PATH of a tokenizer.json (or of its directory)`,
  });
}

async function tokenizerJsonEncoder(spec: string, eosToken: string | undefined): Promise<Encoder> {
  const json = await readTokenizerJson(await tokenizerJsonFile(spec));
  const tables = tokenizerJsonTables(json);
  const encodeInto = idEncoder(tables).encodeInto;
  return {
    name: spec,
    ...tokenizerJsonFacts(tokenizerJsonHead(json), eosToken),
    encode: (text) => {
      const ids = new Uint32Array(text.length * MAX_IDS_PER_UNIT + 3);
      return Array.from(ids.subarray(0, encodeInto(text, ids, 0)));
    },
    encodeInto,
    decode: stripped(
      makeDecoder((id) => json.tokenBytes[id]),
      json.decodeStrip,
    ),
  };
}

/** The tokenizer.json of `spec` and the tokenizer_config.json beside it, as one buffer (what decides the ids). */
export async function tokenizerJsonContents(spec: string): Promise<Buffer> {
  const file = await tokenizerJsonFile(spec);
  const config = await readFile(path.join(path.dirname(file), TOKENIZER_CONFIG_JSON)).catch(() =>
    Buffer.alloc(0),
  );
  return Buffer.concat([await readFile(file), Buffer.from('\0'), config]);
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
  if (isTokenizerJsonSpec(spec)) {
    const build = async () => tokenizerJsonTables(await readTokenizerJson(await tokenizerJsonFile(spec)));
    const key = await tokenizerJsonCacheKey(spec);
    return key === undefined ? build() : cachedTokenTables(key, build, cacheDir);
  }
  const build = async () => tablesOf(await loadParts(spec));
  if (!spec.startsWith(TIKTOKEN_PREFIX)) {
    return cachedTokenTables(`${spec}-gpt-tokenizer-${dependencyVersion('gpt-tokenizer')}`, build, cacheDir);
  }
  const key = await contentCacheKey('tiktoken', () => readFile(spec.slice(TIKTOKEN_PREFIX.length)));
  return key === undefined ? build() : cachedTokenTables(key, build, cacheDir);
}

/**
 * A cache key from a tokenizer's file contents (`PREFIX-HASH`); undefined when they cannot be read, and then the
 * build reads the file again and reports the error, naming it.
 */
async function contentCacheKey(prefix: string, read: () => Promise<Buffer>): Promise<string | undefined> {
  try {
    return `${prefix}-${sha256(await read()).slice(0, 32)}`;
  } catch {
    return undefined;
  }
}

/** The cache key of a tokenizer.json spec: its files' contents. */
function tokenizerJsonCacheKey(spec: string): Promise<string | undefined> {
  return contentCacheKey('tokenizer-json', () => tokenizerJsonContents(spec));
}

/**
 * What the facts of a tokenizer.json come from, cached beside its tables: reading and checking the whole file
 * takes the main thread 0.3-3 s (GPT-2 to Gemma 3), on every run, for a few numbers. The key is the files'
 * contents, so a cached head belongs to a file that was read and checked whole before.
 */
async function tokenizerJsonHeadOf(spec: string, cacheDir: CacheDir): Promise<TokenizerJsonHead> {
  const file = await tokenizerJsonFile(spec);
  const build = async () => tokenizerJsonHead(await readTokenizerJson(file));
  const key = await tokenizerJsonCacheKey(spec);
  const head = key === undefined ? await build() : await cachedJson(`${key}-head`, build, cacheDir);
  return { ...head, file };
}

function sha256(contents: Buffer): string {
  return createHash('sha256').update(contents).digest('hex');
}

function tablesOf(parts: EncodingParts): TokenTables {
  return buildTokenTables(parts.ranks, tiktokenSplitRegex(parts.splitRegex), factsOf(parts));
}

function buildEncoder(name: string, parts: EncodingParts, eosToken?: string): Encoder {
  const encodePieces = idEncoder(tablesOf(parts)).encodeInto;
  return {
    name,
    ...factsOf(parts, eosToken),
    encode: (text) => {
      const ids = new Uint32Array(text.length * MAX_IDS_PER_UNIT);
      return Array.from(ids.subarray(0, encodePieces(text, ids, 0)));
    },
    encodeInto: encodePieces,
    decode: tiktokenDecoder(parts),
  };
}

/** What a writer needs to know of a tokenizer without encoding anything. */
export interface TokenizerFacts {
  /** Largest id + 1, special tokens included (ids fit in uint16 when this is at most 65,536). */
  vocabSize: number;
  eosId: number;
  /** The EOS token's string (--eos-token, else the model's). */
  eosToken: string;
  bosId?: number;
  bosToken?: string;
  /** The model prepends BOS to every text by default (tokenizer.json families; --bos/--no-bos override). */
  addBos?: boolean;
}

/** The BOS id each document starts with: `wanted` (--bos/--no-bos) or else the model's default. */
export function documentBosId(wanted: boolean | undefined, facts: TokenizerFacts): number | undefined {
  return (wanted ?? facts.addBos) ? facts.bosId : undefined;
}

function factsOf(parts: EncodingParts, eosToken?: string): TokenizerFacts {
  const maxSpecial = Math.max(...parts.specialTokens.values());
  const eosId = parts.specialTokens.get(eosToken ?? parts.eos);
  if (eosId === undefined) {
    throw new MegadocsError(
      'BAD_OPTION',
      `--eos-token ${JSON.stringify(eosToken)} is not a special token of the encoding`,
      {
        where: 'eosToken',
        hint: `Pass one of ${[...parts.specialTokens.keys()].slice(0, 8).join(', ')}, ...`,
      },
    );
  }
  return {
    vocabSize: Math.max(parts.ranks.length, maxSpecial + 1),
    eosId,
    eosToken: eosToken ?? parts.eos,
    ...(parts.bos === undefined ? {} : { bosId: specialId(parts, parts.bos), bosToken: parts.bos }),
  };
}

/** The named encodings' facts, so the main thread need not import their rank tables (a test checks them). */
const NAMED_FACTS: Record<(typeof TOKENIZER_NAMES)[number], TokenizerFacts> = {
  o200k_base: { vocabSize: 200_007, eosId: 199_999, eosToken: END_OF_TEXT },
  cl100k_base: { vocabSize: 100_277, eosId: 100_257, eosToken: END_OF_TEXT },
  r50k_base: { vocabSize: 50_257, eosId: 50_256, eosToken: END_OF_TEXT },
};

/**
 * Vocabulary size and EOS/BOS ids of `spec`. Unlike loadEncoder this keeps nothing loaded: importing a named
 * encoding's ranks pins ~60 MB in the module cache, which the tokenizer workers already hold. A tokenizer.json's
 * facts are cached in `cacheDir` (see CacheDir), beside its tables.
 */
export async function tokenizerFacts(
  spec: string,
  eosToken?: string,
  cacheDir?: CacheDir,
): Promise<TokenizerFacts> {
  checkTokenizerSpec(spec);
  if (isTokenizerJsonSpec(spec))
    return tokenizerJsonFacts(await tokenizerJsonHeadOf(spec, cacheDir), eosToken);
  const named = eosToken === undefined ? NAMED_FACTS[spec as keyof typeof NAMED_FACTS] : undefined;
  return named ?? factsOf(await loadParts(spec), eosToken);
}

function specialId(parts: EncodingParts, token: string): number {
  return parts.specialTokens.get(token)!;
}

/** `decode` with up to `spaces` leading spaces taken off (a SentencePiece decoder's Strip). */
function stripped(
  decode: (ids: ArrayLike<number>) => string,
  spaces: number,
): (ids: ArrayLike<number>) => string {
  if (spaces === 0) return decode;
  return (ids) => {
    const text = decode(ids);
    let at = 0;
    while (at < spaces && text[at] === ' ') at++;
    return text.slice(at);
  };
}

/** Special ids decode to their names. */
function tiktokenDecoder(parts: EncodingParts): (ids: ArrayLike<number>) => string {
  const specialNames = new Map([...parts.specialTokens].map(([token, id]) => [id, Buffer.from(token)]));
  return makeDecoder((id) => {
    const entry = parts.ranks[id];
    return entry === undefined ? specialNames.get(id) : entryBytes(entry);
  });
}

/**
 * Bytes of all ids, decoded once (the core's decoder drops a leading U+FEFF and keeps state across calls);
 * an unknown id is an error.
 */
function makeDecoder(bytesOf: (id: number) => Uint8Array | undefined): (ids: ArrayLike<number>) => string {
  const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  return (ids) => {
    const chunks: Uint8Array[] = [];
    for (let index = 0; index < ids.length; index++) {
      const id = ids[index]!;
      const bytes = bytesOf(id);
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
