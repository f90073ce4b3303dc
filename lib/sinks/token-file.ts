// A flat file of token ids being written (Megatron's .bin, a memmap part): appended in 1 MiB chunks to a
// temporary name as uint16 or 32-bit little-endian values, renamed to its final name when complete.
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { MegadocsError, messageOf } from '../errors.js';
import type { AtomicFiles } from './atomic.js';

/** Token ids as 2 bytes (uint16) or 4 (uint32, or int32 for ids under 2^31: the same bytes). */
export type TokenWidth = 2 | 4;

const CHUNK_BYTES = 1 << 20;

export function writeError(file: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `cannot write the file (${messageOf(error)})`, {
    where: file,
    hint: 'Check free space and permissions of the output directory, then rerun the same command to continue',
    cause: error,
  });
}

export class TokenFile {
  private readonly chunk = new Uint8Array(new ArrayBuffer(CHUNK_BYTES));
  private used = 0;
  /** Token ids appended so far. */
  tokens = 0;

  private constructor(
    private readonly files: AtomicFiles,
    readonly path: string,
    private readonly temporary: string,
    private readonly handle: FileHandle,
    private readonly width: TokenWidth,
  ) {}

  /** Opens a temporary file next to `path` (removed by files.removeTemporaries() until it lands). */
  static async create(files: AtomicFiles, path: string, width: TokenWidth): Promise<TokenFile> {
    const temporary = files.temporary(path);
    try {
      return new TokenFile(files, path, temporary, await open(temporary, 'w'), width);
    } catch (error) {
      files.release(temporary);
      throw writeError(path, error);
    }
  }

  async append(ids: Uint32Array): Promise<void> {
    const perChunk = CHUNK_BYTES / this.width;
    for (let from = 0; from < ids.length; ) {
      const take = Math.min(perChunk - this.used / this.width, ids.length - from);
      const values = ids.subarray(from, from + take);
      if (this.width === 2) new Uint16Array(this.chunk.buffer, this.used, take).set(values);
      else this.chunk.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), this.used);
      this.used += take * this.width;
      from += take;
      if (this.used === CHUNK_BYTES) await this.flush();
    }
    this.tokens += ids.length;
  }

  private async flush(): Promise<void> {
    try {
      await this.handle.write(this.chunk, 0, this.used);
    } catch (error) {
      throw writeError(this.path, error);
    }
    this.used = 0;
  }

  /** Writes what is buffered, closes the file and renames it to its final name; returns its size in bytes. */
  async land(): Promise<number> {
    try {
      if (this.used > 0) await this.flush();
      await this.handle.close();
      await rename(this.temporary, this.path);
      return this.tokens * this.width;
    } catch (error) {
      await rm(this.temporary, { force: true });
      throw error instanceof MegadocsError ? error : writeError(this.path, error);
    } finally {
      this.files.release(this.temporary);
    }
  }

  /** Closes and removes the temporary file. */
  async remove(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.temporary, { force: true });
    this.files.release(this.temporary);
  }
}
