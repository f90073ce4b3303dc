// The lookup tables and the decoder of a tokenizer.json (read by tokenizer-json.ts): its tokens' bytes, its
// merge list, and the piece vocabulary of the tokens a piece becomes by itself, so only those are looked up
// whole (with ignore_merges every token; otherwise a token the merges do not rebuild from its bytes is left out).
import { isUtf8 } from 'node:buffer';
import { MegadocsError } from '../errors.js';
import type { TokenizerFacts } from './encoders.js';
import { buildMergeList, MergeList } from './merge-list.js';
import { pieceSymbols } from './merge-symbols.js';
import { buildTokenTables, type TokenTables } from './token-tables.js';
import type { TokenizerJson } from './tokenizer-json.js';

/** What the facts of a tokenizer.json come from: small enough to cache, so a run need not read the file. */
export interface TokenizerJsonHead {
  file: string;
  /** Largest id + 1, added tokens included. */
  vocabSize: number;
  /** The added tokens (names and ids), where --eos-token is looked up. */
  addedTokens: [string, number][];
  eos?: string;
  bos?: string;
  addBos: boolean;
}

export function tokenizerJsonHead(json: TokenizerJson): TokenizerJsonHead {
  const { file, addedTokens, eos, bos, addBos } = json;
  return { file, vocabSize: json.tokenBytes.length, addedTokens: [...addedTokens], eos, bos, addBos };
}

/** The vocabulary size (added tokens included), EOS (`eosToken`, --eos-token, else the config's) and BOS. */
export function tokenizerJsonFacts(json: TokenizerJsonHead, eosToken?: string): TokenizerFacts {
  const addedTokens = new Map(json.addedTokens);
  const idOf = (token: string | undefined, field: string) => {
    if (token === undefined) return undefined;
    const id = addedTokens.get(token);
    if (id === undefined) {
      throw new MegadocsError(
        'TOKENIZER',
        `${field} ${JSON.stringify(token)} is not an added token of the tokenizer`,
        {
          where: json.file,
          hint: `Pass --eos-token with one of its added tokens: ${[...addedTokens.keys()].slice(0, 8).join(', ')}, ...`,
        },
      );
    }
    return id;
  };
  const eos = eosToken ?? json.eos;
  const eosId = eosToken === undefined ? idOf(json.eos, 'eos_token') : idOf(eosToken, '--eos-token');
  if (eosId === undefined || eos === undefined) {
    throw new MegadocsError('TOKENIZER', 'the tokenizer names no eos_token', {
      where: json.file.replace(/tokenizer\.json$/, 'tokenizer_config.json'),
      hint: 'Put tokenizer_config.json (with eos_token) beside tokenizer.json, or pass --no-eos',
    });
  }
  const bosId = idOf(json.bos, 'bos_token');
  return {
    vocabSize: json.vocabSize,
    eosId,
    eosToken: eos,
    ...(bosId === undefined ? {} : { bosId, bosToken: json.bos, addBos: json.addBos }),
  };
}

/** Bytes as gpt-tokenizer-style rank entries: text when valid UTF-8, else the bytes. */
function entry(bytes: Buffer | undefined): string | number[] | undefined {
  if (bytes === undefined) return undefined;
  return isUtf8(bytes) ? bytes.toString('utf8') : Array.from(bytes);
}

export function tokenizerJsonTables(json: TokenizerJson): TokenTables {
  const merges = buildMergeList(json.merges);
  const mergeList = new MergeList(merges);
  const symbols = pieceSymbols(json.symbols);
  const added = new Set(json.addedTokens.values());
  const scratch = new Uint32Array(1024);
  /** Whether merging the text's symbols gives back the token (or ignore_merges makes a whole piece one token). */
  const rebuilt = (id: number, text: string) => {
    if (json.ignoreMerges) return true;
    if (text.length * 4 > scratch.length) return false;
    return mergeList.mergeInPlace(scratch, symbols(text, scratch)) === 1 && scratch[0] === id;
  };
  const pieceTexts = json.tokenTexts.map((text, id) =>
    text !== undefined && !added.has(id) && rebuilt(id, text) ? text : undefined,
  );
  const tokenEntries = json.tokenBytes.map((bytes, id) => (added.has(id) ? undefined : entry(bytes)));
  const tables = buildTokenTables(
    pieceTexts,
    json.splitRegex,
    tokenizerJsonFacts(tokenizerJsonHead(json)),
    tokenEntries,
  );
  return {
    ...tables,
    presplit: json.presplitRegexes.map(({ source, flags }) => ({ source, flags })),
    mergeList: { merges, symbols: json.symbols, prepare: json.prepare },
  };
}
