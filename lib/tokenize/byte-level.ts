// The byte-level alphabet of GPT-2-style BPE vocabularies: each of the 256 bytes is written as one printable
// character (printable Latin-1 bytes as themselves, the others as U+0100 on), so token strings hold any bytes.

/** The character that stands for each byte, by byte. */
export const BYTE_CHARS: readonly string[] = (() => {
  const chars: string[] = [];
  let next = 0x100;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || byte >= 0xae;
    chars.push(String.fromCharCode(printable ? byte : next++));
  }
  return chars;
})();

const BYTE_OF_CHAR = new Map(BYTE_CHARS.map((char, byte) => [char, byte]));

/** The bytes a byte-level token string stands for, or undefined when it holds a character outside the alphabet. */
export function byteLevelBytes(token: string): Buffer | undefined {
  const bytes = Buffer.allocUnsafe(token.length);
  for (let at = 0; at < token.length; at++) {
    const byte = BYTE_OF_CHAR.get(token[at]!);
    if (byte === undefined) return undefined;
    bytes[at] = byte;
  }
  return bytes;
}
