// The encode loop: splits text into pieces with the encoding's regex (run on the class text, class-text.ts)
// and looks each piece up in a flat open-addressing table read in place from the text (no substring, no Map):
// the vocabulary's single-token strings plus a bounded cache of the multi-token pieces met so far. Only a piece
// seen for the first time goes to gpt-tokenizer's byte-pair merge. Same ids as the core's encodeNative, about
// 3x its speed once the cache is warm.

import { ClassTexts, classTextRegex, nonAsciiLiterals } from './class-text.js';
import { EMPTY, occupySlot, sharedSlots } from './hash-slots.js';

/** Merges one piece that is not a single token into ids (gpt-tokenizer's byte-pair core). */
export type MergePiece = (piece: string) => readonly number[];

export interface PieceEncoderParts {
  vocabulary: PieceVocabulary;
  /** Regexes that split the text before splitRegex, each run on every piece the one before left. */
  presplitRegexes?: RegExp[];
  splitRegex: RegExp;
  merge: MergePiece;
}

/**
 * The vocabulary's token strings as a piece table, in shared memory: built once (buildPieceVocabulary), copied
 * by each encoder, which then adds its own cache of merged pieces. Entry e is a token string whose UTF-16 units
 * are units[unitStart[e], unitStart[e+1]) and whose id is ids[e]; slots hash entries, sized for the cache too.
 */
export interface PieceVocabulary {
  slots: Int32Array;
  unitStart: Uint32Array;
  ids: Uint32Array;
  units: Uint16Array;
  /** Multi-token pieces an encoder caches before its cache is emptied and starts over. */
  maxCachedPieces: number;
}

/**
 * Writes the ids of `text` into `out` from index `at` and returns the index after the last one. `out` must have
 * room for MAX_IDS_PER_UNIT ids per UTF-16 unit of `text` (an id stands for at least one UTF-8 byte).
 */
export type PieceEncode = (text: string, out: Uint32Array, at: number) => number;

export const MAX_IDS_PER_UNIT = 3;

const DEFAULT_MAX_CACHED_PIECES = 100_000;
/** Longer pieces (long runs of spaces, digits-free junk) are merged every time rather than cached. */
const MAX_CACHED_PIECE_LENGTH = 64;

/** The piece vocabulary of `ranks` (token text by rank; entries that are byte arrays, not UTF-8, are left out). */
export function buildPieceVocabulary(
  ranks: readonly (string | readonly number[] | undefined)[],
  maxCachedPieces = DEFAULT_MAX_CACHED_PIECES,
): PieceVocabulary {
  let units = 0;
  let strings = 0;
  for (const entry of ranks) {
    if (typeof entry === 'string') {
      units += entry.length;
      strings += 1;
    }
  }
  const vocabulary: PieceVocabulary = {
    slots: sharedSlots(strings + maxCachedPieces),
    unitStart: new Uint32Array(new SharedArrayBuffer(4 * (strings + 1))),
    ids: new Uint32Array(new SharedArrayBuffer(4 * strings)),
    units: new Uint16Array(new SharedArrayBuffer(2 * units)),
    maxCachedPieces,
  };
  let entry = 0;
  // A vocabulary's token strings are distinct, so none is added twice.
  ranks.forEach((token, rank) => {
    if (typeof token !== 'string') return;
    const from = vocabulary.unitStart[entry]!;
    for (let index = 0; index < token.length; index++)
      vocabulary.units[from + index] = token.charCodeAt(index);
    vocabulary.unitStart[entry + 1] = from + token.length;
    vocabulary.ids[entry] = rank;
    occupySlot(vocabulary.slots, hashUnits(token, 0, token.length), entry);
    entry += 1;
  });
  return vocabulary;
}

/** A split regex as run on texts and on their class texts (class-text.ts; undefined when it cannot be). */
interface Splitter {
  unicode: RegExp;
  classText: RegExp | undefined;
}

function splitterOf(regex: RegExp, sticky: boolean): Splitter {
  const flags = `${regex.flags.replace(/[gy]/g, '')}${sticky ? 'y' : 'g'}`;
  const classText = classTextRegex(regex);
  return {
    unicode: new RegExp(regex.source, flags),
    classText: classText && new RegExp(classText.source, sticky ? 'y' : 'g'),
  };
}

/** The index after the character at `at` (a surrogate pair is one character). */
function nextCharacter(text: string, at: number): number {
  const unit = text.charCodeAt(at);
  const low = text.charCodeAt(at + 1);
  return unit >= 0xd800 && unit <= 0xdbff && low >= 0xdc00 && low <= 0xdfff ? at + 2 : at + 1;
}

/**
 * Splits text as Hugging Face's Split pre-tokenizer (Isolated) does, and tiktoken where its regex matches every
 * character: each match is a piece, and so is each stretch between matches; an empty match only ends a stretch.
 * The presplit regexes run first, each on the pieces the one before left (a piece is split as a text of its own:
 * lookarounds do not see past it), and the last regex's pieces are looked up.
 */
export function createPieceEncoder(parts: PieceEncoderParts): PieceEncode {
  const table = new PieceTable(parts.vocabulary);
  const presplit = (parts.presplitRegexes ?? []).map((regex) => splitterOf(regex, false));
  // Sticky: a match must start where the previous one ended, so only its end (lastIndex) is needed.
  const last = splitterOf(parts.splitRegex, true);
  const splitters = [last, ...presplit];
  // A text holding a non-ASCII character a rewritten regex names has no class text (see ClassTexts).
  const classTexts = new ClassTexts(
    [parts.splitRegex, ...(parts.presplitRegexes ?? [])]
      .filter((_regex, index) => splitters[index]!.classText !== undefined)
      .map(nonAsciiLiterals)
      .join(''),
  );
  const anyClassText = splitters.some((splitter) => splitter.classText !== undefined);

  /** Writes the ids of text[from, to) into `out` at `at`; returns the index after them. */
  const writePiece = (text: string, from: number, to: number, out: Uint32Array, at: number) => {
    const written = table.writeIds(text, from, to, out, at);
    if (written !== EMPTY) return written;
    const ids = parts.merge(text.slice(from, to));
    out.set(ids, at);
    table.cache(text, from, to, ids);
    return at + ids.length;
  };

  /** Writes the ids of each piece of `text` (class text `classText`) from `at`; returns the index after. */
  const encodePieces = (text: string, classText: string | undefined, out: Uint32Array, at: number) => {
    // Boundaries found in the class text are those of the text itself (same length, same classes).
    const useClassText = classText !== undefined && last.classText !== undefined;
    const splitter = useClassText ? last.classText! : last.unicode;
    const scanned = useClassText ? classText : text;
    let next = at;
    let start = 0;
    /** Where the stretch of characters no match covers began; -1: none. */
    let gap = -1;
    while (start < text.length) {
      splitter.lastIndex = start;
      if (!splitter.test(scanned)) {
        if (gap < 0) gap = start;
        start = nextCharacter(text, start);
        continue;
      }
      if (gap >= 0) next = writePiece(text, gap, start, out, next);
      gap = -1;
      const end = splitter.lastIndex;
      if (end === start) {
        gap = start;
        start = nextCharacter(text, start);
        continue;
      }
      next = writePiece(text, start, end, out, next);
      start = end;
    }
    if (gap >= 0) next = writePiece(text, gap, text.length, out, next);
    return next;
  };

  /** Splits `text` by presplit[level] and hands each piece to the next level; returns the index after. */
  const encodeLevel = (
    level: number,
    text: string,
    classText: string | undefined,
    out: Uint32Array,
    at: number,
  ): number => {
    if (level === presplit.length) return encodePieces(text, classText, out, at);
    const useClassText = classText !== undefined && presplit[level]!.classText !== undefined;
    const regex = useClassText ? presplit[level]!.classText! : presplit[level]!.unicode;
    const scanned = useClassText ? classText : text;
    const piece = (from: number, to: number, next: number) =>
      encodeLevel(level + 1, text.slice(from, to), classText?.slice(from, to), out, next);
    let next = at;
    let previous = 0;
    regex.lastIndex = 0;
    for (let match = regex.exec(scanned); match !== null; match = regex.exec(scanned)) {
      const end = match.index + match[0].length;
      if (match.index > previous) next = piece(previous, match.index, next);
      if (end === match.index) {
        regex.lastIndex = nextCharacter(text, end);
        previous = match.index;
        continue;
      }
      next = piece(match.index, end, next);
      previous = end;
    }
    if (previous < text.length) next = piece(previous, text.length, next);
    return next;
  };

  return (text, out, at) => encodeLevel(0, text, anyClassText ? classTexts.of(text) : undefined, out, at);
}

/** FNV-1a over UTF-16 units, with a final mix so the low bits (the slot) depend on every unit. */
function hashUnits(text: string, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let index = start; index < end; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193);
  return hash ^ (hash >>> 15);
}

class PieceTable {
  private readonly slots: Int32Array;
  private readonly vocabularySlots: Int32Array;
  private readonly mask: number;
  /** Per entry: where its units start in `units` and its ids in `ids`; entry e spans [start[e], start[e+1]). */
  private readonly unitStart: Uint32Array;
  private readonly idStart: Uint32Array;
  private units: Uint16Array;
  private ids: Uint32Array;
  private readonly vocabularyEntries: number;
  private entries: number;
  private readonly maxCachedPieces: number;

  /** A private copy of `vocabulary`, with room for the cache of merged pieces. */
  constructor(vocabulary: PieceVocabulary) {
    this.maxCachedPieces = vocabulary.maxCachedPieces;
    this.vocabularySlots = vocabulary.slots;
    this.slots = vocabulary.slots.slice();
    this.mask = this.slots.length - 1;
    const entries = vocabulary.ids.length;
    const capacity = entries + this.maxCachedPieces;
    this.unitStart = new Uint32Array(capacity + 1);
    this.unitStart.set(vocabulary.unitStart);
    this.idStart = new Uint32Array(capacity + 1);
    for (let entry = 0; entry <= entries; entry++) this.idStart[entry] = entry;
    this.units = new Uint16Array(vocabulary.units.length + this.maxCachedPieces * 8);
    this.units.set(vocabulary.units);
    this.ids = new Uint32Array(entries + this.maxCachedPieces * 2);
    this.ids.set(vocabulary.ids);
    this.vocabularyEntries = entries;
    this.entries = entries;
  }

  /** Writes the ids of text[start, end) into `out` at `at` and returns the index after them; EMPTY if unknown. */
  writeIds(text: string, start: number, end: number, out: Uint32Array, at: number): number {
    const entry = this.find(text, start, end);
    if (entry === EMPTY) return EMPTY;
    let next = at;
    for (let index = this.idStart[entry]!; index < this.idStart[entry + 1]!; index++)
      out[next++] = this.ids[index]!;
    return next;
  }

  /** Remembers the ids of a merged piece; a full cache is emptied first (the vocabulary stays). */
  cache(text: string, start: number, end: number, ids: readonly number[]): void {
    if (end - start > MAX_CACHED_PIECE_LENGTH) return;
    if (this.entries - this.vocabularyEntries >= this.maxCachedPieces) this.forgetCachedPieces();
    this.add(text, start, end, ids);
  }

  private find(text: string, start: number, end: number): number {
    const length = end - start;
    for (let slot = hashUnits(text, start, end) & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot]!;
      if (entry === EMPTY) return EMPTY;
      const from = this.unitStart[entry]!;
      if (this.unitStart[entry + 1]! - from !== length) continue;
      let index = 0;
      while (index < length && this.units[from + index] === text.charCodeAt(start + index)) index++;
      if (index === length) return entry;
    }
  }

  private add(text: string, start: number, end: number, ids: readonly number[]): void {
    const entry = this.entries;
    const unitsFrom = this.unitStart[entry]!;
    const idsFrom = this.idStart[entry]!;
    this.units = ensureCapacity(this.units, unitsFrom + (end - start));
    this.ids = ensureCapacity(this.ids, idsFrom + ids.length);
    for (let index = start; index < end; index++)
      this.units[unitsFrom + index - start] = text.charCodeAt(index);
    this.ids.set(ids, idsFrom);
    this.unitStart[entry + 1] = unitsFrom + (end - start);
    this.idStart[entry + 1] = idsFrom + ids.length;
    occupySlot(this.slots, hashUnits(text, start, end), entry);
    this.entries += 1;
  }

  private forgetCachedPieces(): void {
    this.slots.set(this.vocabularySlots);
    this.entries = this.vocabularyEntries;
  }
}

function ensureCapacity<T extends Uint16Array | Uint32Array>(array: T, length: number): T {
  if (length <= array.length) return array;
  const grown = new (array.constructor as new (length: number) => T)(Math.max(length, array.length * 2));
  grown.set(array);
  return grown;
}
