// The SentencePiece-style BPE family of tokenizer.json (Llama 2, Mistral, Gemma): spaces become "▁" (Replace and
// Prepend normalizers, or a Metaspace pre-tokenizer), a piece starts as its characters (byte_fallback, unk,
// fuse_unk), and the decoder turns "▁" back into spaces. Without a pre-tokenizer the whole text is one word;
// it is still cut into pieces before each "▁" that follows another character wherever no merge of the model
// joins across such a place, which gives the same merges (none crosses) and lets pieces be cached.
import { MegadocsError } from '../errors.js';
import type { SymbolTables } from './merge-symbols.js';
import type { TextStep } from './text-steps.js';
import type { TokenizerJson } from './tokenizer-json.js';
import { describeJson, type Json, unsupported } from './tokenizer-json-refusal.js';

const METASPACE = '\u2581';
const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;

export interface SentencePieceInput {
  file: string;
  json: Json;
  model: Json;
  vocab: Record<string, number>;
  normalizer: TextStep[];
  mergePairs: (readonly [string, string])[];
  /** Filled in: each model token's bytes as the decoder gives them. */
  tokenBytes: (Buffer | undefined)[];
}

export function sentencePieceParts(
  input: SentencePieceInput,
): Pick<TokenizerJson, 'symbols' | 'splitRegex' | 'prepare' | 'decodeStrip'> {
  const { file, json, model, vocab, tokenBytes } = input;
  const decodeStrip = checkDecoder(file, json.decoder);
  for (const [token, id] of Object.entries(vocab)) {
    const byte = BYTE_TOKEN.exec(token);
    tokenBytes[id] = byte
      ? Buffer.of(Number.parseInt(byte[1]!, 16))
      : Buffer.from(token.replaceAll(METASPACE, ' '));
  }
  const { prepare, split } = preTokenization(file, json.pre_tokenizer, input.normalizer);
  return {
    symbols: charSymbols(file, model, vocab),
    splitRegex: split ? /[^\u2581]+|\u2581[^\u2581]*/g : uncrossedSplit(input.mergePairs),
    prepare,
    decodeStrip,
  };
}

/** The decoder must undo what the normalizer did: Replace "▁" -> " ", ByteFallback, Fuse, Strip of spaces. */
function checkDecoder(file: string, decoder: unknown): number {
  const json = decoder as Json | null;
  const steps = (json?.type === 'Sequence' ? json.decoders : [json]) as (Json | null)[];
  let strip = 0;
  for (const step of steps) {
    const from = (step?.pattern as Json | undefined)?.String;
    if (step?.type === 'Replace' && from === METASPACE && step.content === ' ') continue;
    if (step?.type === 'ByteFallback' || step?.type === 'Fuse') continue;
    if (step?.type === 'Metaspace' && (step.replacement ?? METASPACE) === METASPACE) continue;
    if (step?.type === 'Strip' && step.content === ' ' && step.stop === 0 && typeof step.start === 'number') {
      strip = step.start;
      continue;
    }
    throw unsupported(
      file,
      'decoder',
      `${describeJson(decoder)} (expected ByteLevel, or Replace "▁" -> " ", ByteFallback, Fuse and Strip)`,
    );
  }
  return strip;
}

/** The text steps and whether the pre-tokenizer splits the text into words (Metaspace with split). */
function preTokenization(
  file: string,
  preTokenizer: unknown,
  normalizer: TextStep[],
): { prepare: TextStep[]; split: boolean } {
  const json = preTokenizer as Json | null | undefined;
  if (!json) return { prepare: normalizer, split: false };
  if (json.type === 'Metaspace' && (json.replacement ?? METASPACE) === METASPACE) {
    const scheme = json.prepend_scheme ?? (json.add_prefix_space === false ? 'never' : 'always');
    if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') {
      throw unsupported(file, 'pre_tokenizer', describeJson(json));
    }
    const prefix: TextStep[] = scheme === 'never' ? [] : [{ type: 'prefix', text: METASPACE }];
    return {
      prepare: [...normalizer, { type: 'replace', from: ' ', to: METASPACE }, ...prefix],
      split: json.split !== false,
    };
  }
  // Gemma: a Split on " " after a normalizer that replaced every " " does nothing.
  const pattern = (json.pattern as Json | undefined)?.String;
  if (
    json.type === 'Split' &&
    typeof pattern === 'string' &&
    normalizer.some((step) => step.type === 'replace' && step.from === pattern && !step.to.includes(pattern))
  ) {
    return { prepare: normalizer, split: false };
  }
  throw unsupported(
    file,
    'pre_tokenizer',
    `${describeJson(json)} (expected none, Metaspace, or a Split on a string the normalizer replaces)`,
  );
}

/** Each character's token, the `<0xXX>` tokens (byte_fallback) and the unknown token. */
function charSymbols(file: string, model: Json, vocab: Record<string, number>): SymbolTables {
  const bmpIds = new Int32Array(0x10000).fill(-1);
  const astral: [number, number][] = [];
  const byteFallbackIds = new Int32Array(model.byte_fallback === true ? 256 : 0).fill(-1);
  for (const [token, id] of Object.entries(vocab)) {
    const code = token.codePointAt(0)!;
    if (token.length === 1) bmpIds[code] = id;
    else if (token.length === 2 && code > 0xffff) astral.push([code, id]);
    const byte = BYTE_TOKEN.exec(token);
    if (byte && byteFallbackIds.length > 0) byteFallbackIds[Number.parseInt(byte[1]!, 16)] = id;
  }
  astral.sort((a, b) => a[0] - b[0]);
  const unk = model.unk_token;
  const unkId = typeof unk === 'string' ? vocab[unk] : undefined;
  if (typeof unk === 'string' && unkId === undefined) {
    throw new MegadocsError('TOKENIZER', `model.unk_token ${JSON.stringify(unk)} is not in model.vocab`, {
      where: file,
      hint: 'The tokenizer.json is inconsistent: download it again',
    });
  }
  return {
    kind: 'chars',
    bmpIds,
    astralCodes: Uint32Array.from(astral, ([code]) => code),
    astralIds: Uint32Array.from(astral, ([, id]) => id),
    byteFallbackIds,
    unkId: unkId ?? -1,
    fuseUnk: model.fuse_unk === true,
  };
}

/**
 * Pieces that start at each "▁" following another character, except after a character with which some merge
 * joins across (the last character of a merge's left side that ends otherwise than "▁", its right side starting
 * with "▁": Gemma's ">" + "▁</"). Runs of "▁" are never cut.
 */
function uncrossedSplit(mergePairs: (readonly [string, string])[]): RegExp {
  const joining = new Set<string>();
  for (const [left, right] of mergePairs) {
    if (right.startsWith(METASPACE) && !left.endsWith(METASPACE)) joining.add([...left].at(-1)!);
  }
  if (joining.size === 0) return /\u2581*[^\u2581]*/g;
  const chars = [...joining].map((char) => char.replace(/[\\\]^-]/g, '\\$&')).join('');
  return new RegExp(`\\u2581*(?:[^\\u2581]|(?<=[${chars}])\\u2581+)*`, 'g');
}
