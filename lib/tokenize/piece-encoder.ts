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

export function createPieceEncoder(parts: PieceEncoderParts): PieceEncode {
  const table = new PieceTable(parts.vocabulary);
  const flags = parts.splitRegex.flags.replace('g', '');
  // Sticky: a match must start where the previous one ended, so only its end (lastIndex) is needed.
  const unicodeSplitter = new RegExp(parts.splitRegex.source, `${flags}y`);
  const classSplitter = classTextRegex(parts.splitRegex);
  const classTexts = new ClassTexts(nonAsciiLiterals(parts.splitRegex));
  return (text, out, at) => {
    const classText = classSplitter && classTexts.of(text);
    // Boundaries found in the class text are those of the text itself (same length, same classes).
    const [splitter, scanned] =
      classText === undefined ? [unicodeSplitter, text] : [classSplitter!, classText];
    let next = at;
    let start = 0;
    while (start < text.length) {
      splitter.lastIndex = start;
      // The encodings' regexes match every character; were one not matched, it is skipped, as matchAll would.
      if (!splitter.test(scanned)) {
        start += 1;
        continue;
      }
      const end = splitter.lastIndex;
      const written = table.writeIds(text, start, end, out, next);
      if (written === EMPTY) {
        const ids = parts.merge(text.slice(start, end));
        out.set(ids, next);
        next += ids.length;
        table.cache(text, start, end, ids);
      } else {
        next = written;
      }
      start = end;
    }
    return next;
  };
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
