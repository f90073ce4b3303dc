// Reads a Hugging Face `tokenizer.json` (and the `tokenizer_config.json` beside it) into what megadocs' encoder
// needs: token bytes by id, the merge list, the split regex, the text steps, BOS/EOS. Only the families whose
// ids megadocs reproduces exactly are accepted (byte-level BPE; SentencePiece-style BPE, see sentencepiece-json.ts);
// any other component is refused, naming it and the file.
import { isUtf8 } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MegadocsError, messageOf } from '../errors.js';
import { BYTE_CHARS, byteLevelBytes } from './byte-level.js';
import type { SymbolTables } from './merge-symbols.js';
import { sentencePieceParts } from './sentencepiece-json.js';
import { splitPatternRegex, UnsupportedPattern } from './split-pattern.js';
import type { TextStep } from './text-steps.js';
import { describeJson, type Json, unsupported } from './tokenizer-json-refusal.js';

export const TOKENIZER_JSON = 'tokenizer.json';
export const TOKENIZER_CONFIG_JSON = 'tokenizer_config.json';

/** GPT-2's split regex, which a ByteLevel pre-tokenizer with use_regex applies (in the library's spelling). */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export interface TokenizerJson {
  /** The tokenizer.json file read. */
  file: string;
  /** Each id's bytes as decoded (model tokens and added tokens); undefined for ids with no token. */
  tokenBytes: (Buffer | undefined)[];
  /** Each model token as the text of a piece (byte-level tokens that are not valid UTF-8 have none). */
  tokenTexts: (string | undefined)[];
  /** merges[rank] = [left id, right id, merged id]. */
  merges: [number, number, number][];
  /** The symbols a piece starts as, before the merges. */
  symbols: SymbolTables;
  /** Split regexes applied before splitRegex, each to the pieces the one before left (empty: none). */
  presplitRegexes: RegExp[];
  splitRegex: RegExp;
  /** What is done to a text before it is split. */
  prepare: TextStep[];
  /** Leading spaces the decoder strips from a decoded text (SentencePiece's Strip decoder). */
  decodeStrip: number;
  /** A piece that is a token is that token, whatever the merges (BPE ignore_merges). */
  ignoreMerges: boolean;
  /** Added tokens (special or not) by content. */
  addedTokens: Map<string, number>;
  eos?: string;
  bos?: string;
  /** The model prepends BOS to every text by default. */
  addBos: boolean;
}

/** The tokenizer.json of `location`: the file itself, or the one in the directory. */
export async function tokenizerJsonPath(location: string): Promise<string> {
  try {
    return (await stat(location)).isDirectory() ? path.join(location, TOKENIZER_JSON) : location;
  } catch {
    return location; // reading it reports the error, naming the path
  }
}

async function readJson(file: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new MegadocsError('TOKENIZER', `cannot read the ${what}: ${messageOf(error)}`, {
      where: file,
      hint: `Pass --tokenizer with a ${TOKENIZER_JSON} file, a directory that holds one, or hf:ORG/REPO`,
      cause: error,
    });
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as Json;
  } catch (error) {
    throw new MegadocsError('TOKENIZER', `the ${what} is not valid JSON: ${messageOf(error)}`, {
      where: file,
      hint: 'Download the file again (it may be truncated)',
    });
  }
}

/** A token named in tokenizer_config.json: a string or an AddedToken object `{content}`. */
function configToken(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return undefined;
}

/** Whether the post-processor's single-text template starts with a special token (the model's BOS). */
function templateAddsBos(postProcessor: unknown): boolean {
  const single = (postProcessor as Json | null)?.single;
  return Array.isArray(single) && single.length > 0 && 'SpecialToken' in (single[0] as Json);
}

interface PreTokenization {
  /** Split regexes applied first, each to the pieces the one before left (DeepSeek-V3's Sequence, Digits). */
  presplitRegexes: RegExp[];
  splitRegex: RegExp;
  prepare: TextStep[];
}

/** Matches a whole piece: the last split when no step after the Splits splits again (ByteLevel without use_regex). */
const WHOLE_PIECE = /[\s\S]+/gu;

/**
 * The Split regex of one pre-tokenizer step before ByteLevel: a Split by a regex, Isolated, not inverted; or
 * Digits, which isolates each number character (Rust's char::is_numeric, `\p{N}`) or each run of them.
 */
function stepRegex(file: string, step: Json): RegExp | undefined {
  if (step.type === 'Digits') return new RegExp(step.individual_digits === true ? '\\p{N}' : '\\p{N}+', 'gu');
  const pattern = (step.pattern as Json | undefined)?.Regex;
  if (
    step.type !== 'Split' ||
    typeof pattern !== 'string' ||
    step.behavior !== 'Isolated' ||
    step.invert !== false
  )
    return undefined;
  return patternRegex(file, pattern);
}

function byteLevelPreTokenization(
  file: string,
  preTokenizer: unknown,
  normalizer: TextStep[],
): PreTokenization {
  const steps = (
    (preTokenizer as Json | null)?.type === 'Sequence' ? (preTokenizer as Json).pretokenizers : [preTokenizer]
  ) as Json[];
  const last = steps.at(-1);
  const regexes = steps.slice(0, -1).map((step) => stepRegex(file, step));
  // ByteLevel's add_prefix_space puts a space before each piece it is given: before the text only when alone.
  if (
    last?.type !== 'ByteLevel' ||
    regexes.includes(undefined) ||
    (steps.length > 1 && last.add_prefix_space === true)
  ) {
    throw unsupported(
      file,
      'pre_tokenizer',
      `${steps.map(describeJson).join(', ')} (expected ByteLevel, alone or after Split regexes (Isolated) and Digits, without add_prefix_space after them)`,
    );
  }
  if (last.use_regex !== false) regexes.push(patternRegex(file, GPT2_PATTERN));
  const splitRegex = (regexes.pop() as RegExp | undefined) ?? WHOLE_PIECE;
  // A lone surrogate splits as the U+FFFD the binding sees (a symbol, where the regexes tell symbols apart).
  const prepare: TextStep[] = [
    { type: 'wellFormed' },
    ...normalizer,
    ...(last.add_prefix_space === true ? [PREFIX_SPACE] : []),
  ];
  return { presplitRegexes: regexes as RegExp[], splitRegex, prepare };
}

const PREFIX_SPACE: TextStep = { type: 'prefix', text: ' ' };

function patternRegex(file: string, pattern: string): RegExp {
  try {
    return splitPatternRegex(pattern);
  } catch (error) {
    if (error instanceof UnsupportedPattern) {
      throw unsupported(
        file,
        'pre_tokenizer Split pattern',
        `${JSON.stringify(pattern)} uses ${error.message}`,
      );
    }
    throw error;
  }
}

/** The normalizer as text steps: none, NFC, Prepend, Replace of a string, or a Sequence of those. */
function normalizerSteps(file: string, normalizer: unknown): TextStep[] {
  if (normalizer === null || normalizer === undefined) return [];
  const json = normalizer as Json;
  if (json.type === 'Sequence')
    return ((json.normalizers ?? []) as Json[]).flatMap((each) => normalizerSteps(file, each));
  if (json.type === 'NFC') return [{ type: 'nfc' }];
  if (json.type === 'Prepend' && typeof json.prepend === 'string')
    return [{ type: 'prepend', text: json.prepend }];
  const from = (json.pattern as Json | undefined)?.String;
  if (
    json.type === 'Replace' &&
    typeof from === 'string' &&
    from !== '' &&
    typeof json.content === 'string'
  ) {
    return [{ type: 'replace', from, to: json.content }];
  }
  throw unsupported(
    file,
    'normalizer',
    `${describeJson(normalizer)} (expected none, NFC, Prepend, Replace of a string, or a Sequence of them)`,
  );
}

/** Reads and checks a tokenizer.json (path of the file) and the tokenizer_config.json beside it, if any. */
export async function readTokenizerJson(file: string): Promise<TokenizerJson> {
  const json = await readJson(file, TOKENIZER_JSON);
  const model = (json.model ?? {}) as Json;
  if (model.type !== 'BPE') {
    throw unsupported(file, 'model', `${String(model.type)} (expected BPE)`);
  }
  for (const [field, accepted] of [
    ['dropout', null],
    ['continuing_subword_prefix', ''],
    ['end_of_word_suffix', ''],
  ] as const) {
    const value = model[field];
    if (value !== undefined && value !== null && value !== accepted) {
      throw unsupported(file, `model.${field}`, JSON.stringify(value));
    }
  }
  const normalizer = normalizerSteps(file, json.normalizer);
  const vocab = (model.vocab ?? {}) as Record<string, number>;
  const idOf = (token: string, where: string) => {
    const id = vocab[token];
    if (id === undefined) {
      throw new MegadocsError(
        'TOKENIZER',
        `${where} names ${JSON.stringify(token)}, which is not in model.vocab`,
        {
          where: file,
          hint: 'The tokenizer.json is inconsistent: download it again',
        },
      );
    }
    return id;
  };
  const mergePairs = ((model.merges ?? []) as (string | [string, string])[]).map((merge, rank) => {
    const [left, right, extra] = typeof merge === 'string' ? merge.split(' ') : merge;
    if (left === undefined || right === undefined || extra !== undefined) {
      throw unsupported(file, `model.merges[${rank}]`, JSON.stringify(merge));
    }
    return [left, right] as const;
  });
  const merges = mergePairs.map(([left, right], rank) => {
    const where = `model.merges[${rank}]`;
    return [idOf(left, where), idOf(right, where), idOf(left + right, where)] as [number, number, number];
  });

  const tokenBytes: (Buffer | undefined)[] = [];
  const tokenTexts: (string | undefined)[] = [];
  let family: Pick<TokenizerJson, 'symbols' | 'presplitRegexes' | 'splitRegex' | 'prepare' | 'decodeStrip'>;
  if ((json.decoder as Json | null)?.type === 'ByteLevel') {
    if (model.byte_fallback === true)
      throw unsupported(file, 'model.byte_fallback', 'true with a ByteLevel decoder');
    for (const [token, id] of Object.entries(vocab)) {
      const bytes = byteLevelBytes(token);
      tokenBytes[id] = bytes;
      if (bytes && isUtf8(bytes)) tokenTexts[id] = bytes.toString('utf8');
    }
    const byteIds = Uint32Array.from(BYTE_CHARS, (char, byte) =>
      idOf(char, `the byte 0x${byte.toString(16)}`),
    );
    family = {
      symbols: { kind: 'bytes', byteIds },
      ...byteLevelPreTokenization(file, json.pre_tokenizer, normalizer),
      decodeStrip: 0,
    };
  } else {
    for (const [token, id] of Object.entries(vocab)) tokenTexts[id] = token;
    family = {
      presplitRegexes: [],
      ...sentencePieceParts({ file, json, model, vocab, normalizer, mergePairs, tokenBytes }),
    };
  }
  const addedTokens = new Map<string, number>();
  for (const added of (json.added_tokens ?? []) as Json[]) {
    addedTokens.set(added.content as string, added.id as number);
    // An added token that is also a model token decodes as the model token (through the decoder).
    tokenBytes[added.id as number] ??= Buffer.from(added.content as string);
  }

  const configFile = path.join(path.dirname(file), TOKENIZER_CONFIG_JSON);
  const config = await readJson(configFile, TOKENIZER_CONFIG_JSON).catch(() => ({}) as Json);
  const bos = configToken(config.bos_token);
  const addBos =
    bos !== undefined &&
    (typeof config.add_bos_token === 'boolean' ? config.add_bos_token : templateAddsBos(json.post_processor));
  return {
    file,
    tokenBytes,
    tokenTexts,
    merges,
    ...family,
    ignoreMerges: model.ignore_merges === true,
    addedTokens,
    eos: configToken(config.eos_token),
    bos,
    addBos,
  };
}
