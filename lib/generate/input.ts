// What the model sees of a document: the text cut to `--max-input-tokens` at a line boundary, and the
// token-exact split points that stretch uses. Both need a tokenizer, passed in by the caller.
import type { Encoder } from '../tokenize/encoders.js';

export type TextTokenizer = Pick<Encoder, 'encode' | 'decode'>;

/** The longest prefix of `decoded` that `text` really starts with (a cut id may end inside a character). */
export function commonPrefixLength(text: string, decoded: string): number {
  let length = Math.min(text.length, decoded.length);
  while (length > 0 && !text.startsWith(decoded.slice(0, length))) length -= 1;
  return length;
}

/**
 * `text` cut to at most `maxTokens` tokens, at the last line break that fits; a first line longer than the
 * budget is cut at a token boundary. `cut` says whether anything was removed.
 */
export function cutAtLineBoundary(
  text: string,
  maxTokens: number,
  textTokenizer: TextTokenizer,
): { text: string; cut: boolean } {
  const ids = textTokenizer.encode(text);
  if (ids.length <= maxTokens) return { text, cut: false };
  const head = text.slice(0, commonPrefixLength(text, textTokenizer.decode(ids.slice(0, maxTokens))));
  const lineEnd = head.lastIndexOf('\n');
  return { text: lineEnd > 0 ? head.slice(0, lineEnd) : head, cut: true };
}

/**
 * Character offsets of the `splits` points that cut `text` into splits + 1 pieces of equal token length
 * (as equal as whole tokens allow). Fewer points come back when the text has too few tokens; a point
 * never falls inside a character.
 */
export function equalTokenSplits(text: string, splits: number, textTokenizer: TextTokenizer): number[] {
  const ids = textTokenizer.encode(text);
  const count = Math.min(splits, ids.length - 1);
  const offsets: number[] = [];
  let previousToken = 0;
  let previousOffset = 0;
  for (let point = 1; point <= count; point += 1) {
    let token = Math.max(previousToken + 1, Math.round((point * ids.length) / (count + 1)));
    let offset = -1;
    while (token < ids.length) {
      const piece = textTokenizer.decode(ids.slice(previousToken, token));
      if (!piece.includes('\uFFFD') && text.startsWith(piece, previousOffset)) {
        offset = previousOffset + piece.length;
        break;
      }
      token += 1;
    }
    if (offset < 0 || offset >= text.length) break;
    offsets.push(offset);
    previousToken = token;
    previousOffset = offset;
  }
  return offsets;
}
