// Which format a shard is in: decided by its name's extensions (the last one wins), confirmed by magic bytes.
// Also says, in words, what a file's first bytes look like, for errors when the two disagree.
import { ZSTD_MAGIC } from '../../codecs/zstd.js';
import { MegadocsError } from '../../errors.js';

/** How records are laid out once the bytes are decompressed. */
export type Container = 'jsonl' | 'json' | 'txt' | 'parquet';
/** The compression layer around a container (Parquet compresses inside, so it is always `none`). */
export type Compression = 'none' | 'gzip' | 'zstd';

export interface ShardFormat {
  container: Container;
  compression: Compression;
}

const CONTAINERS: Record<string, Container> = {
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  json: 'json',
  txt: 'txt',
  parquet: 'parquet',
};
const COMPRESSIONS: Record<string, Compression> = { gz: 'gzip', zst: 'zstd', zstd: 'zstd' };

export const SUPPORTED_EXTENSIONS =
  '.jsonl, .ndjson, .json, .txt (each optionally followed by .gz, .zst or .zstd), .parquet';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const PARQUET_MAGIC = Buffer.from('PAR1');

/** The format a name implies (`cc.zstd.parquet` is Parquet, `x.jsonl.zst` zstd-compressed JSONL), or undefined. */
export function formatOf(name: string): ShardFormat | undefined {
  const base = name.slice(name.lastIndexOf('/') + 1).toLowerCase();
  const extensions = base.split('.').slice(1);
  const last = extensions.at(-1);
  if (last === undefined) return undefined;
  const compression = COMPRESSIONS[last];
  if (compression === undefined) {
    const container = CONTAINERS[last];
    return container ? { container, compression: 'none' } : undefined;
  }
  const inner = CONTAINERS[extensions.at(-2) ?? ''];
  if (inner === undefined || inner === 'parquet') return undefined;
  return { container: inner, compression };
}

/** Like formatOf, but an unsupported name is a BAD_INPUT error that lists what is supported. */
export function requireFormat(name: string): ShardFormat {
  const format = formatOf(name);
  if (format) return format;
  throw new MegadocsError('BAD_INPUT', 'unsupported file type', {
    where: name,
    hint: `Supported extensions: ${SUPPORTED_EXTENSIONS}`,
  });
}

/** A few words on what bytes look like: `gzip data`, `zstd data`, `Parquet data`, or the text they start with. */
export function describeBytes(head: Uint8Array): string {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (startsWith(bytes, GZIP_MAGIC)) return 'gzip data';
  if (startsWith(bytes, ZSTD_MAGIC)) return 'zstd data';
  if (startsWith(bytes, PARQUET_MAGIC)) return 'Parquet data';
  if (bytes.length === 0) return 'an empty file';
  return `bytes starting ${JSON.stringify(bytes.subarray(0, 16).toString('latin1'))}`;
}

/**
 * Throws when the first bytes of a byte-stream shard contradict its extension (e.g. `.jsonl` holding
 * gzip, `.gz` holding plain text). `head` is the first 16 bytes, or the whole file if shorter.
 */
export function checkMagic(name: string, format: ShardFormat, head: Uint8Array): void {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const expected = format.compression === 'none' ? undefined : format.compression;
  const found = startsWith(bytes, GZIP_MAGIC) ? 'gzip' : isZstd(bytes) ? 'zstd' : undefined;
  if (expected === found && !(expected === undefined && startsWith(bytes, PARQUET_MAGIC))) return;
  const says = expected ? `${expected} data` : `uncompressed ${format.container.toUpperCase()}`;
  throw new MegadocsError('BAD_INPUT', `its name says ${says}, but it holds ${describeBytes(bytes)}`, {
    where: name,
    hint: 'Rename the file so its extension matches its content (.gz for gzip, .zst for zstd, .parquet for Parquet)',
  });
}

function isZstd(bytes: Buffer): boolean {
  if (startsWith(bytes, ZSTD_MAGIC)) return true;
  // A skippable frame (magic 0x184D2A50..5F, little-endian) may precede the first zstd frame.
  return (
    bytes.length >= 4 &&
    (bytes[0] & 0xf0) === 0x50 &&
    bytes[1] === 0x2a &&
    bytes[2] === 0x4d &&
    bytes[3] === 0x18
  );
}

function startsWith(bytes: Buffer, magic: Buffer): boolean {
  return bytes.length >= magic.length && bytes.compare(magic, 0, magic.length, 0, magic.length) === 0;
}
