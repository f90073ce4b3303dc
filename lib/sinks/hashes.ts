// Shard file hashes as MDS names them (python hashlib names, lowercase hex digests): which ones this Node build
// computes, the one-shot digests of a buffer, and running digests of a file written piece by piece.
import { createHash, getHashes, type Hash } from 'node:crypto';
import { MegadocsError } from '../errors.js';

/** Hash names as MDS writes them (python hashlib names) and node's names for them. */
const HASH_ALGORITHMS: Record<string, string> = {
  blake2b: 'blake2b512',
  blake2s: 'blake2s256',
  md5: 'md5',
  sha1: 'sha1',
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha3_224: 'sha3-224',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
};

/** The hash names (python hashlib spelling) this Node build can compute. */
export function supportedHashes(): string[] {
  const available = new Set(getHashes());
  return Object.keys(HASH_ALGORITHMS).filter((name) => available.has(HASH_ALGORITHMS[name]!));
}

/** Sorted, de-duplicated hash names; throws BAD_OPTION for names this build cannot compute. */
export function checkHashes(names: readonly string[]): string[] {
  const supported = supportedHashes();
  for (const name of names) {
    if (!supported.includes(name)) {
      throw new MegadocsError('BAD_OPTION', `unsupported shard hash "${name}"`, {
        where: 'hashes',
        hint: `Use any of ${supported.join(', ')}`,
      });
    }
  }
  return [...new Set(names)].sort();
}

/** Lowercase hex digests of `data` for each name in `names`. */
export function digests(data: Uint8Array, names: readonly string[]): Record<string, string> {
  const running = new RunningDigests(names);
  running.update(data);
  return running.digest();
}

/** Digests of bytes that arrive piece by piece, and their count. */
export class RunningDigests {
  private readonly hashes: Array<[string, Hash]>;
  bytes = 0;

  constructor(names: readonly string[]) {
    this.hashes = names.map((name) => [name, createHash(HASH_ALGORITHMS[name]!)]);
  }

  update(piece: Uint8Array): void {
    for (const [, hash] of this.hashes) hash.update(piece);
    this.bytes += piece.length;
  }

  /** The lowercase hex digest for each name (once: the hashes are finished). */
  digest(): Record<string, string> {
    return Object.fromEntries(this.hashes.map(([name, hash]) => [name, hash.digest('hex')]));
  }
}
