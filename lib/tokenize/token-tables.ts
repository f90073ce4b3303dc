// An encoding's lookup tables in shared memory (the piece vocabulary and the byte ranks), built once from its
// rank table and handed to every tokenizer worker, so no worker imports or indexes the rank table itself; and
// the id encoder made from them: the piece encoder plus gpt-tokenizer's byte-pair merge over the byte ranks.
import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore';
import { MegadocsError } from '../errors.js';
import { type ByteRankArrays, ByteRanks, buildByteRanks } from './byte-ranks.js';
import type { TokenizerFacts } from './encoders.js';
import {
  buildPieceVocabulary,
  createPieceEncoder,
  MAX_IDS_PER_UNIT,
  type MergePiece,
  type PieceEncode,
  type PieceVocabulary,
} from './piece-encoder.js';

export interface TokenTables {
  facts: TokenizerFacts;
  /** The split regex with tiktoken's white space (see encoders.ts), as source and flags. */
  split: { source: string; flags: string };
  pieces: PieceVocabulary;
  bytes: ByteRankArrays;
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

export function buildTokenTables(
  ranks: readonly (string | readonly number[])[],
  splitRegex: RegExp,
  facts: TokenizerFacts,
): TokenTables {
  return {
    facts,
    split: { source: splitRegex.source, flags: splitRegex.flags },
    pieces: buildPieceVocabulary(ranks),
    bytes: buildByteRanks(ranks),
  };
}

export function idEncoder(tables: TokenTables): IdEncoder {
  const splitRegex = new RegExp(tables.split.source, tables.split.flags);
  // Special-token strings are never looked for: they are split and merged as the plain text they are.
  const encodeInto = createPieceEncoder({
    vocabulary: tables.pieces,
    splitRegex,
    merge: byteRankMerge(new ByteRanks(tables.bytes), splitRegex),
  });
  return { ...tables.facts, encodeInto };
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
