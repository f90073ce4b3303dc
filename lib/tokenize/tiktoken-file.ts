// Reads a tiktoken rank file (`base64-token rank` per line) into gpt-tokenizer's rank table, with the
// Llama 3 conventions: ordinary ranks below 128,000, then 256 special tokens from 128,000 on.
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { MegadocsError, messageOf } from '../errors.js';

/** Ranks in the form gpt-tokenizer's byte-pair core takes: a string when the bytes are plain UTF-8, else the bytes. */
export type RankTable = (string | number[])[];

export interface TiktokenFile {
  ranks: RankTable;
  specialTokens: Map<string, number>;
}

/** The first id of Llama 3's special tokens. */
export const LLAMA3_SPECIAL_START = 128_000;
const LLAMA3_SPECIAL_COUNT = 256;
export const LLAMA3_BEGIN_OF_TEXT = '<|begin_of_text|>';
export const LLAMA3_END_OF_TEXT = '<|end_of_text|>';

/** Llama 3's 256 special tokens, ids 128000..128255, as Meta's tokenizer.py names them. */
export function llama3SpecialTokens(): Map<string, number> {
  const named = [
    LLAMA3_BEGIN_OF_TEXT,
    LLAMA3_END_OF_TEXT,
    '<|reserved_special_token_0|>',
    '<|reserved_special_token_1|>',
    '<|reserved_special_token_2|>',
    '<|reserved_special_token_3|>',
    '<|start_header_id|>',
    '<|end_header_id|>',
    '<|reserved_special_token_4|>',
    '<|eot_id|>',
  ];
  const names = [...named];
  for (let reserved = 5; names.length < LLAMA3_SPECIAL_COUNT; reserved++) {
    names.push(`<|reserved_special_token_${reserved}|>`);
  }
  return new Map(names.map((name, index) => [name, LLAMA3_SPECIAL_START + index]));
}

const RANK_LINE = /^([A-Za-z0-9+/]+={0,2}) (\d+)\s*$/;
/**
 * gpt-tokenizer looks ranks up by string for valid UTF-8 and by bytes otherwise; its lookup decoder
 * drops a leading U+FEFF, so tokens starting with one must be stored as bytes (as its own tables do).
 */
function rankEntry(bytes: Buffer): string | number[] {
  const startsWithBom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return isUtf8(bytes) && !startsWithBom ? bytes.toString('utf8') : Array.from(bytes);
}

/**
 * Reads and checks a tiktoken rank file. Lines with a rank of 128,000 or more must be Llama 3's special
 * tokens (Meta's file has none; some copies list them): they become special tokens, never merges.
 */
export async function readTiktokenFile(path: string): Promise<TiktokenFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new MegadocsError('TOKENIZER', `cannot read the tiktoken rank file: ${messageOf(error)}`, {
      where: path,
      hint: 'Pass --tokenizer tiktoken:PATH with the path of a readable tiktoken rank file (e.g. Llama 3 tokenizer.model)',
      cause: error,
    });
  }
  const specialTokens = llama3SpecialTokens();
  const specialNames = new Map([...specialTokens].map(([name, id]) => [id, name]));
  const ranks: RankTable = [];
  const lines = text.split('\n');
  const lineOf = (index: number) => `${path}:${index + 1}`;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const match = RANK_LINE.exec(line);
    if (!match) {
      if (line.trim() === '') continue;
      throw malformed(
        lineOf(index),
        `expected "BASE64_TOKEN RANK", got ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    const [, token, rankText] = match as unknown as [string, string, string];
    const rank = Number(rankText);
    const bytes = Buffer.from(token, 'base64');
    if (rank >= LLAMA3_SPECIAL_START) {
      const expected = specialNames.get(rank);
      if (bytes.toString('latin1') !== expected) {
        throw malformed(
          lineOf(index),
          `rank ${rank} is ${JSON.stringify(bytes.toString('utf8'))}, but Llama 3 reserves it for ${expected ? JSON.stringify(expected) : 'nothing (its ids end at 128255)'}`,
        );
      }
      continue;
    }
    if (ranks[rank] !== undefined) throw malformed(lineOf(index), `rank ${rank} appears twice`);
    ranks[rank] = rankEntry(bytes);
  }
  checkSingleBytes(ranks, path);
  return { ranks, specialTokens };
}

/** Byte-level BPE needs every single byte as a token, or some texts cannot be encoded at all. */
function checkSingleBytes(ranks: RankTable, path: string): void {
  const singles = new Set<number>();
  for (const entry of ranks) {
    if (entry === undefined) continue;
    const bytes = typeof entry === 'string' ? Buffer.from(entry) : entry;
    if (bytes.length === 1) singles.add(bytes[0]!);
  }
  if (singles.size < 256) {
    const missing = [...Array(256).keys()].find((byte) => !singles.has(byte))!;
    throw malformed(path, `has no token for the single byte 0x${missing.toString(16).padStart(2, '0')}`);
  }
}

function malformed(where: string, message: string): MegadocsError {
  return new MegadocsError('TOKENIZER', `not a valid tiktoken rank file: ${message}`, {
    where,
    hint: 'Pass a tiktoken rank file (one "BASE64_TOKEN RANK" per line, like Llama 3 tokenizer.model)',
  });
}
