// The bytes of Megatron-LM's indexed dataset (PREFIX.bin + PREFIX.idx, ../shared/docs/FORMATS.md): the token
// dtype chosen by vocabulary, the .idx written as pieces from the entry lengths, and the .idx parsed back.
import { MegadocsError } from '../errors.js';

export const MEGATRON_MAGIC = Buffer.from('MMIDIDX\x00\x00', 'latin1');
export const MEGATRON_VERSION = 1n;
/** The header: magic, u64 version, u8 dtype code, u64 sequence count, u64 document count + 1. */
export const MEGATRON_HEADER_BYTES = 34;
export const DEFAULT_MEGATRON_PREFIX = 'megadocs';

/** The two token dtypes megadocs writes: Megatron has no uint32 code, so larger vocabularies take int32. */
export type MegatronDtype = 'uint16' | 'int32';
export const MEGATRON_DTYPE_CODES: Record<MegatronDtype, number> = { uint16: 8, int32: 4 };
export const MEGATRON_ITEM_BYTES: Record<MegatronDtype, 2 | 4> = { uint16: 2, int32: 4 };

/** uint16 under 65,500 tokens (Megatron's own rule, which keeps room for added special tokens), else int32. */
export function megatronDtype(vocabSize: number): MegatronDtype {
  return vocabSize < 65_500 ? 'uint16' : 'int32';
}

/** The basenames of a pair: PREFIX.bin and PREFIX.idx. */
export function megatronFiles(prefix: string): { bin: string; idx: string } {
  return { bin: `${prefix}.bin`, idx: `${prefix}.idx` };
}

/** The prefix of the one Megatron pair among a directory's `files` (undefined when it holds no .idx). */
export function megatronPrefixIn(files: readonly string[]): string | undefined {
  return files.find((name) => name.endsWith('.idx'))?.slice(0, -4);
}

/** A prefix is a file name, not a path: the pair lands in the output directory itself. */
export function checkMegatronPrefix(prefix: string): string {
  if (
    prefix.length === 0 ||
    prefix.includes('/') ||
    prefix.includes('\\') ||
    prefix === '.' ||
    prefix === '..'
  ) {
    throw new MegadocsError('BAD_OPTION', `prefix "${prefix}" is not a plain file name`, {
      where: 'prefix',
      hint: 'Give a name without slashes, such as megadocs: the files are OUT/PREFIX.bin and OUT/PREFIX.idx',
    });
  }
  return prefix;
}

const PIECE_ENTRIES = 1 << 16;

/**
 * The .idx of `lengths` (tokens per entry), piece by piece: one sequence per document, so the document
 * indices are 0..S. Memory: the lengths plus one piece, whatever the entry count.
 */
export function* megatronIndexPieces(lengths: Int32Array, dtype: MegatronDtype): Generator<Uint8Array> {
  const count = lengths.length;
  const header = Buffer.alloc(MEGATRON_HEADER_BYTES);
  MEGATRON_MAGIC.copy(header, 0);
  header.writeBigUInt64LE(MEGATRON_VERSION, 9);
  header.writeUInt8(MEGATRON_DTYPE_CODES[dtype], 17);
  header.writeBigUInt64LE(BigInt(count), 18);
  header.writeBigUInt64LE(BigInt(count + 1), 26);
  yield header;
  if (count > 0) yield new Uint8Array(lengths.buffer, lengths.byteOffset, lengths.byteLength);
  const itemBytes = MEGATRON_ITEM_BYTES[dtype];
  let pointer = 0;
  for (let start = 0; start < count; start += PIECE_ENTRIES) {
    const piece = new BigInt64Array(Math.min(PIECE_ENTRIES, count - start));
    for (let at = 0; at < piece.length; at += 1) {
      piece[at] = BigInt(pointer);
      pointer += lengths[start + at]! * itemBytes;
    }
    yield new Uint8Array(piece.buffer);
  }
  for (let start = 0; start <= count; start += PIECE_ENTRIES) {
    const piece = new BigInt64Array(Math.min(PIECE_ENTRIES, count + 1 - start));
    for (let at = 0; at < piece.length; at += 1) piece[at] = BigInt(start + at);
    yield new Uint8Array(piece.buffer);
  }
}

/** A parsed .idx: what inspect, feed and merge read. */
export interface MegatronIndex {
  dtype: MegatronDtype | string;
  itemBytes: number;
  lengths: Int32Array;
  pointers: BigInt64Array;
  documentIndices: BigInt64Array;
}

const DTYPE_BY_CODE: Record<number, [string, number]> = {
  1: ['uint8', 1],
  2: ['int8', 1],
  3: ['int16', 2],
  4: ['int32', 4],
  5: ['int64', 8],
  6: ['float64', 8],
  7: ['float32', 4],
  8: ['uint16', 2],
};

/** Parses an .idx; throws an Error saying which field is wrong (the caller names the file). */
export function parseMegatronIndex(data: Buffer): MegatronIndex {
  if (data.length < MEGATRON_HEADER_BYTES || !data.subarray(0, 9).equals(MEGATRON_MAGIC))
    throw new Error('does not start with the MMIDIDX magic');
  const version = data.readBigUInt64LE(9);
  if (version !== MEGATRON_VERSION) throw new Error(`has version ${version}, Megatron reads version 1`);
  const code = data.readUInt8(17);
  const known = DTYPE_BY_CODE[code];
  if (!known) throw new Error(`has dtype code ${code}, which Megatron does not know`);
  const sequences = Number(data.readBigUInt64LE(18));
  const documents = Number(data.readBigUInt64LE(26));
  const expected = MEGATRON_HEADER_BYTES + sequences * 12 + documents * 8;
  if (data.length !== expected)
    throw new Error(`has ${data.length} bytes, its counts (${sequences} sequences) need ${expected}`);
  const copy = (offset: number, bytes: number) =>
    data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + bytes);
  const lengthsAt = MEGATRON_HEADER_BYTES;
  const pointersAt = lengthsAt + sequences * 4;
  const documentsAt = pointersAt + sequences * 8;
  return {
    dtype: known[0],
    itemBytes: known[1],
    lengths: new Int32Array(copy(lengthsAt, sequences * 4)),
    pointers: new BigInt64Array(copy(pointersAt, sequences * 8)),
    documentIndices: new BigInt64Array(copy(documentsAt, documents * 8)),
  };
}
