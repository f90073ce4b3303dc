// A tokenizer.json Split pattern (an Oniguruma regex, as the Hugging Face tokenizers library runs it) as an
// equivalent JavaScript regex: `\s`/`\S` become Unicode White_Space, and `(?i:...)` groups are spelled out.

/** Thrown for a construct this translation does not cover; the caller names the file and the component. */
export class UnsupportedPattern extends Error {}

/**
 * Every character a case-insensitive `char` matches (Unicode simple case folding: `s` also matches U+017F,
 * `k` U+212A), found once by testing the Basic Multilingual Plane, as a class body.
 */
function caseVariants(char: string): string {
  const test = new RegExp(`^${char}$`, 'iu');
  let members = '';
  for (let code = 0; code < 0x10000; code++) {
    if (code >= 0xd800 && code <= 0xdfff) continue;
    const candidate = String.fromCharCode(code);
    if (test.test(candidate)) members += candidate;
  }
  return members;
}

/** `(?i:BODY)` with BODY made of plain characters and `|`: each letter becomes the class of its case variants. */
function expandCaseInsensitive(body: string): string {
  if (/[\\[\](){}.*+?^$]/.test(body)) {
    throw new UnsupportedPattern(`(?i:...) with anything but plain characters and | (${body})`);
  }
  let out = '';
  for (const char of body) out += /\p{L}/u.test(char) ? `[${caseVariants(char)}]` : char;
  return out;
}

/** The JavaScript regex (flags `u`) that splits text as `pattern` does in the Hugging Face library. */
export function splitPatternRegex(pattern: string): RegExp {
  let source = '';
  for (let at = 0; at < pattern.length; at++) {
    const char = pattern[at]!;
    if (char === '\\') {
      const next = pattern[at + 1];
      if (next === 's') source += '\\p{White_Space}';
      else if (next === 'S') source += '\\P{White_Space}';
      else if (next !== undefined && /[dDwWbBhHRXKGAzZ]/.test(next)) {
        throw new UnsupportedPattern(`the escape \\${next}`);
      } else source += char + (next ?? '');
      at += 1;
      continue;
    }
    if (pattern.startsWith('(?i:', at)) {
      const close = pattern.indexOf(')', at);
      if (close < 0) throw new UnsupportedPattern('an unclosed (?i: group');
      source += `(?:${expandCaseInsensitive(pattern.slice(at + 4, close))})`;
      at = close;
      continue;
    }
    if (pattern.startsWith('(?', at) && !/^\(\?[:=!]|^\(\?<[=!]/.test(pattern.slice(at, at + 4))) {
      throw new UnsupportedPattern(`the group ${pattern.slice(at, at + 4)}...`);
    }
    source += char;
  }
  try {
    return new RegExp(source, 'gu');
  } catch (error) {
    throw new UnsupportedPattern(`a regex JavaScript cannot run (${(error as Error).message})`);
  }
}
