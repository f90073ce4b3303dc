// A faster way to run an encoding's split regex: every non-ASCII character of the text is replaced by a
// one-byte code for its Unicode class (letter case, mark, number, white space, punctuation, symbol, other), and the regex is
// rewritten to match those codes instead of \p{...} classes. Piece boundaries are the same (each class test
// depends only on the class), but V8 runs the rewritten regex, without the u flag, on a one-byte string
// about 3x faster. Texts with surrogates (astral characters), or with a non-ASCII character the regex names
// literally in a class (`[sS\u017F]`), keep the original regex.

/** Stand-in codes: one per class the encodings' regexes tell apart. ASCII characters stand for themselves. */
const CODES = {
  Lu: 0x80,
  Lt: 0x81,
  Ll: 0x82,
  Lm: 0x83,
  Lo: 0x84,
  M: 0x85,
  N: 0x86,
  White_Space: 0x87,
  P: 0x88,
  S: 0x89,
  other: 0x8a,
} as const;

const hex = (code: number) => `\\x${code.toString(16).padStart(2, '0')}`;

/** The ASCII characters of a Unicode property, as class members. */
function asciiMembers(property: string): string {
  const test = new RegExp(`\\p{${property}}`, 'u');
  let members = '';
  for (let code = 0; code < 0x80; code++) if (test.test(String.fromCharCode(code))) members += hex(code);
  return members;
}

/** Members of each \p{...} in the rewritten regex: its ASCII members and the codes of its classes. */
const PROPERTY_MEMBERS: Record<string, string> = {
  L: `A-Za-z${hex(CODES.Lu)}-${hex(CODES.Lo)}`,
  Lu: `A-Z${hex(CODES.Lu)}`,
  Lt: hex(CODES.Lt),
  Ll: `a-z${hex(CODES.Ll)}`,
  Lm: hex(CODES.Lm),
  Lo: hex(CODES.Lo),
  M: hex(CODES.M),
  N: `0-9${hex(CODES.N)}`,
  White_Space: `\\t-\\r ${hex(CODES.White_Space)}`,
  P: `${asciiMembers('P')}${hex(CODES.P)}`,
  S: `${asciiMembers('S')}${hex(CODES.S)}`,
};

/** Escapes whose meaning depends on more than these classes (or on the u flag): such regexes are not rewritten. */
const UNSAFE_ESCAPES = new Set(['s', 'S', 'd', 'D', 'w', 'W', 'b', 'B', 'u', 'c', 'k']);

/**
 * The regex rewritten for class texts, sticky, or undefined when it uses anything this rewrite does not cover
 * (another property, \s, \w, `.`, a case-insensitive flag, ...).
 */
export function classTextRegex(regex: RegExp): RegExp | undefined {
  if (/[imsv]/.test(regex.flags)) return undefined;
  const source = regex.source;
  let out = '';
  let inClass = false;
  for (let at = 0; at < source.length; at++) {
    const char = source[at]!;
    if (char === '\\') {
      const next = source[at + 1]!;
      if (next === 'p' || next === 'P') {
        const close = source.indexOf('}', at);
        const members = PROPERTY_MEMBERS[source.slice(at + 3, close)];
        if (members === undefined || (next === 'P' && inClass)) return undefined;
        out += inClass ? members : `[${next === 'P' ? '^' : ''}${members}]`;
        at = close;
        continue;
      }
      if (UNSAFE_ESCAPES.has(next)) return undefined;
      out += char + next;
      at += 1;
      continue;
    }
    if (char === '.' && !inClass) return undefined;
    if (char.charCodeAt(0) >= 0x80) {
      // Texts holding such a character keep the original regex (see nonAsciiLiterals), so it is left out here;
      // the end of a range (`[\u4e00-\u9fa5]`) stands for characters the texts do not name: not rewritten.
      if (!inClass || source[at - 1] === '-' || source[at + 1] === '-') return undefined;
      continue;
    }
    if (char === '[') inClass = true;
    if (char === ']') inClass = false;
    out += char;
  }
  return new RegExp(out, 'y');
}

/** The non-ASCII characters `regex` names literally: a text holding one is split with the original regex. */
export function nonAsciiLiterals(regex: RegExp): string {
  return [...regex.source.replace(/\\./gu, '')].filter((char) => char.charCodeAt(0) >= 0x80).join('');
}

const CLASS_TESTS: [RegExp, number][] = [
  [/\p{White_Space}/u, CODES.White_Space],
  [/\p{Lu}/u, CODES.Lu],
  [/\p{Lt}/u, CODES.Lt],
  [/\p{Ll}/u, CODES.Ll],
  [/\p{Lm}/u, CODES.Lm],
  [/\p{Lo}/u, CODES.Lo],
  [/\p{M}/u, CODES.M],
  [/\p{N}/u, CODES.N],
  [/\p{P}/u, CODES.P],
  [/\p{S}/u, CODES.S],
];

const NON_ASCII = /[\u0080-\uffff]/;

function classCode(char: string): number {
  for (const [test, code] of CLASS_TESTS) if (test.test(char)) return code;
  return CODES.other;
}

/** The code of a character whose text keeps the original regex. */
const ORIGINAL_REGEX = 0xff;

/** Turns texts into class texts; remembers each BMP character's class the first time it is met. */
export class ClassTexts {
  /** Class code by UTF-16 unit; 0 until looked up. */
  private readonly codes = new Uint8Array(0x10000);
  private bytes = Buffer.allocUnsafe(0);

  /** `literals`: the regex's non-ASCII literals (nonAsciiLiterals); texts holding one have no class text. */
  constructor(literals = '') {
    for (let code = 0; code < 0x80; code++) this.codes[code] = code;
    for (let at = 0; at < literals.length; at++) this.codes[literals.charCodeAt(at)] = ORIGINAL_REGEX;
  }

  /** The class text of `text` (same length), or undefined when it has a surrogate (an astral character) or a literal. */
  of(text: string): string | undefined {
    if (!NON_ASCII.test(text)) return text;
    if (this.bytes.length < text.length)
      this.bytes = Buffer.allocUnsafe(Math.max(text.length, this.bytes.length * 2));
    const bytes = this.bytes;
    const codes = this.codes;
    for (let at = 0; at < text.length; at++) {
      const unit = text.charCodeAt(at);
      let code = codes[unit]!;
      if (code === ORIGINAL_REGEX) return undefined;
      if (code === 0 && unit !== 0) {
        if (unit >= 0xd800 && unit <= 0xdfff) return undefined;
        code = classCode(String.fromCharCode(unit));
        codes[unit] = code;
      }
      bytes[at] = code;
    }
    return bytes.toString('latin1', 0, text.length);
  }
}
