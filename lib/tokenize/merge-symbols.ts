// How a piece becomes the symbols a tokenizer.json's merges start from: byte-level models take one token per
// UTF-8 byte; SentencePiece-style models one per character, a character with no token of its own falling back
// to its bytes' `<0xXX>` tokens (byte_fallback) or to the unknown token (consecutive ones fused with fuse_unk).

/** Plain data (shared memory or structured-clone safe), for the workers and the table cache. */
export type SymbolTables =
  | { kind: 'bytes'; byteIds: Uint32Array }
  | {
      kind: 'chars';
      /** Token id of each BMP character, -1 when it has none. */
      bmpIds: Int32Array;
      /** Astral characters with a token: code points ascending, and their ids at the same index. */
      astralCodes: Uint32Array;
      astralIds: Uint32Array;
      /** `<0xXX>` token ids by byte, empty without byte_fallback. */
      byteFallbackIds: Int32Array;
      /** -1: none. */
      unkId: number;
      fuseUnk: boolean;
    };

/** Writes the symbols of `piece` into `ids` (room: 4 per UTF-16 unit) and returns how many. */
export type PieceSymbols = (piece: string, ids: Uint32Array) => number;

export function pieceSymbols(tables: SymbolTables): PieceSymbols {
  if (tables.kind === 'bytes') {
    const utf8 = new TextEncoder();
    let bytes = new Uint8Array(256);
    return (piece, ids) => {
      if (bytes.length < piece.length * 3) bytes = new Uint8Array(piece.length * 6);
      const count = utf8.encodeInto(piece, bytes).written;
      for (let at = 0; at < count; at++) ids[at] = tables.byteIds[bytes[at]!]!;
      return count;
    };
  }
  const { bmpIds, astralCodes, astralIds, byteFallbackIds, unkId, fuseUnk } = tables;
  const astralId = (code: number) => {
    let low = 0;
    let high = astralCodes.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const found = astralCodes[middle]!;
      if (found === code) return astralIds[middle]!;
      if (found < code) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  };
  const charBytes = new Uint8Array(4);
  const utf8 = new TextEncoder();
  return (piece, ids) => {
    let count = 0;
    let previousUnknown = false;
    for (let at = 0; at < piece.length; at++) {
      const code = piece.codePointAt(at)!;
      const astral = code > 0xffff;
      // A lone surrogate is read as U+FFFD, as the text's UTF-8 has it.
      const id = astral ? astralId(code) : bmpIds[code >= 0xd800 && code <= 0xdfff ? 0xfffd : code]!;
      const char = astral ? piece.slice(at, at + 2) : piece[at]!;
      if (astral) at += 1;
      if (id >= 0) {
        ids[count++] = id;
        previousUnknown = false;
        continue;
      }
      if (byteFallbackIds.length > 0) {
        const written = utf8.encodeInto(char, charBytes).written;
        let all = true;
        for (let index = 0; index < written; index++) all &&= byteFallbackIds[charBytes[index]!]! >= 0;
        if (all) {
          for (let index = 0; index < written; index++) ids[count++] = byteFallbackIds[charBytes[index]!]!;
          previousUnknown = false;
          continue;
        }
      }
      if (unkId < 0) continue;
      if (!(fuseUnk && previousUnknown)) ids[count++] = unkId;
      previousUnknown = true;
    }
    return count;
  };
}
