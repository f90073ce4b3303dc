// An encoding's lookup tables in shared memory (the piece vocabulary, the byte ranks, a tokenizer.json's merge
// list), built once and handed to every tokenizer worker, so no worker imports or indexes the rank table itself;
// and the id encoder made from them: the piece encoder plus the byte-pair merge (gpt-tokenizer's over the byte
// ranks for tiktoken encodings, the merge list's for tokenizer.json files).
import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore';
import { MegadocsError } from '../errors.js';
import { type ByteRankArrays, ByteRanks, buildByteRanks } from './byte-ranks.js';
import type { TokenizerFacts } from './encoders.js';
import { MergeList, type MergeListArrays } from './merge-list.js';
import { pieceSymbols, type SymbolTables } from './merge-symbols.js';
import {
  buildPieceVocabulary,
  createPieceEncoder,
  MAX_IDS_PER_UNIT,
  type MergePiece,
  type PieceEncode,
  type PieceVocabulary,
} from './piece-encoder.js';
import { applyTextSteps, type TextStep } from './text-steps.js';

export interface TokenTables {
  facts: TokenizerFacts;
  /** The split regex with tiktoken's white space (see encoders.ts), as source and flags. */
  split: { source: string; flags: string };
  /** A tokenizer.json's Split regexes run before `split`, each on the pieces the one before left. */
  presplit?: { source: string; flags: string }[];
  pieces: PieceVocabulary;
  /** Every token's bytes by id: the ranks tiktoken encodings merge by. */
  bytes: ByteRankArrays;
  /** A tokenizer.json's merges, which then decide instead of the byte ranks. */
  mergeList?: MergeListTables;
}

/** What a tokenizer.json adds: its merges, the symbols a piece starts as, what is done to a text before the split. */
export interface MergeListTables {
  merges: MergeListArrays;
  symbols: SymbolTables;
  prepare: TextStep[];
}

/** Encodes text into ids; what a tokenizer worker needs (no decoding, no rank table). */
export interface IdEncoder extends TokenizerFacts {
  encodeInto: PieceEncode;
}

/** Room one document needs in an output array: MAX_IDS_PER_UNIT ids per UTF-16 unit, plus BOS and EOS. */
export function documentRoom(text: string): number {
  return text.length * MAX_IDS_PER_UNIT + 2;
}

/** Writes BOS (when given), the ids of `text`, then EOS (when given) into `out` from `at`; returns the index after. */
export function encodeDocument(
  encoder: Pick<IdEncoder, 'encodeInto'>,
  text: string,
  out: Uint32Array,
  at: number,
  bos: number | undefined,
  eos: number | undefined,
): number {
  let next = at;
  if (bos !== undefined) out[next++] = bos;
  next = encoder.encodeInto(text, out, next);
  if (eos !== undefined) out[next++] = eos;
  return next;
}

/**
 * `pieceTexts[id]` is the text of a token a piece is looked up as (absent: merged each time it is met);
 * `tokenBytes[id]` every token's bytes, as text when valid UTF-8.
 */
export function buildTokenTables(
  pieceTexts: readonly (string | readonly number[] | undefined)[],
  splitRegex: RegExp,
  facts: TokenizerFacts,
  tokenBytes: readonly (string | readonly number[] | undefined)[] = pieceTexts,
): TokenTables {
  return {
    facts,
    split: { source: splitRegex.source, flags: splitRegex.flags },
    pieces: buildPieceVocabulary(pieceTexts),
    bytes: buildByteRanks(tokenBytes),
  };
}

export function idEncoder(tables: TokenTables): IdEncoder {
  const splitRegex = new RegExp(tables.split.source, tables.split.flags);
  // Special-token strings are never looked for: they are split and merged as the plain text they are.
  const encodePieces = createPieceEncoder({
    vocabulary: tables.pieces,
    presplitRegexes: (tables.presplit ?? []).map(({ source, flags }) => new RegExp(source, flags)),
    splitRegex,
    merge: tables.mergeList
      ? mergeListMerge(tables.mergeList)
      : byteRankMerge(new ByteRanks(tables.bytes), splitRegex),
  });
  const prepared = tables.mergeList && applyTextSteps(tables.mergeList.prepare);
  return { ...tables.facts, encodeInto: prepared ? preparedEncode(encodePieces, prepared) : encodePieces };
}

/**
 * Encodes the prepared text. NFC can lengthen a text (up to 3x), so when the caller's room for `text` might not
 * hold the prepared one, it is encoded into a scratch array first and copied when it fits.
 */
function preparedEncode(encodePieces: PieceEncode, prepare: (text: string) => string): PieceEncode {
  return (text, out, at) => {
    const prepared = prepare(text);
    if (at + prepared.length * MAX_IDS_PER_UNIT <= out.length) return encodePieces(prepared, out, at);
    const scratch = new Uint32Array(prepared.length * MAX_IDS_PER_UNIT);
    const count = encodePieces(prepared, scratch, 0);
    if (at + count > out.length) {
      throw new MegadocsError(
        'TOKENIZER',
        `a text of ${text.length} characters normalized into too many tokens`,
        {
          hint: 'Give the encoder room for MAX_IDS_PER_UNIT ids per character of the normalized text',
        },
      );
    }
    out.set(scratch.subarray(0, count), at);
    return at + count;
  };
}

/** The merge list's byte-pair merge of one piece: its symbols (bytes' or characters' tokens), merged. */
function mergeListMerge(tables: MergeListTables): MergePiece {
  const mergeList = new MergeList(tables.merges);
  const symbols = pieceSymbols(tables.symbols);
  let ids = new Uint32Array(256);
  return (piece) => {
    if (ids.length < piece.length * 4) ids = new Uint32Array(piece.length * 8);
    return Array.from(ids.subarray(0, mergeList.mergeInPlace(ids, symbols(piece, ids))));
  };
}

/**
 * gpt-tokenizer's byte-pair merge of one piece (its bytePairEncode: not in the typed API; the public encode
 * would split the piece again), with its merge cache off (the piece encoder caches merged pieces). The core is
 * built without a rank table of its own: every rank it asks for is looked up by exact bytes in ByteRanks
 * (its own lookup decodes byte runs with a TextDecoder that drops a leading U+FEFF, so merges into tokens that
 * start with one, "\uFEFF", "\uFEFF#", ..., would never happen: tiktoken makes them).
 */
function byteRankMerge(byteRanks: ByteRanks, splitRegex: RegExp): MergePiece {
  const core = new BytePairEncodingCore({
    bytePairRankDecoder: [],
    tokenSplitRegex: splitRegex,
    mergeCacheSize: 0,
  });
  const internals = core as unknown as {
    bytePairEncode?: MergePiece;
    getBpeRankFromBytes?: (key: Uint8Array) => number | undefined;
    getBpeRankFromString?: (key: string) => number | undefined;
  };
  for (const name of ['bytePairEncode', 'getBpeRankFromBytes', 'getBpeRankFromString'] as const) {
    if (typeof internals[name] !== 'function') {
      throw new MegadocsError('TOKENIZER', `gpt-tokenizer no longer has BytePairEncodingCore.${name}`, {
        hint: 'Install the gpt-tokenizer 4.x version megadocs was tested with',
      });
    }
  }
  internals.getBpeRankFromBytes = (key) => byteRanks.get(key);
  internals.getBpeRankFromString = (key) => byteRanks.get(Buffer.from(key));
  return internals.bytePairEncode!.bind(core);
}
