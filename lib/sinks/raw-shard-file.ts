// A shard's raw bytes written to a temporary file while it fills (appends go through two bounded buffers: one fills while
// the other is written out), then read back in pieces when the shard lands: a shard's size on disk never
// becomes memory.
import { type FileHandle, open, rm } from 'node:fs/promises';
import { MegadocsError, messageOf } from '../errors.js';
import type { AtomicFiles } from './atomic.js';

/** Appends are gathered into a buffer of this size before they are written; reads come back in pieces of it. */
export const RAW_PIECE_BYTES = 1 << 20;

/** Told each piece as it is written out (the buffer holding it is refilled once the returned promise settles). */
export type OnWriteOut = (piece: Uint8Array) => Promise<void>;

/** A temporary file of shard bytes: append while the shard fills, then pieces() once, then remove(). */
export class RawShardFile {
  private buffer = Buffer.allocUnsafeSlow(RAW_PIECE_BYTES);
  /** The buffer being written out (with onWriteOut) while `buffer` fills. */
  private spare = Buffer.allocUnsafeSlow(RAW_PIECE_BYTES);
  private writing: Promise<void> = Promise.resolve();
  private buffered = 0;
  /** Bytes appended so far. */
  bytes = 0;

  private constructor(
    private readonly files: AtomicFiles,
    private readonly path: string,
    private handle: FileHandle | undefined,
    private readonly onWriteOut: OnWriteOut | undefined,
  ) {}

  /**
   * Creates a temporary file next to `shardPath` (registered with `files`, so abort removes it); `onWriteOut`
   * also gets every piece written to it, in order, in pieces of RAW_PIECE_BYTES or more but the last.
   */
  static async create(files: AtomicFiles, shardPath: string, onWriteOut?: OnWriteOut): Promise<RawShardFile> {
    const path = files.temporary(shardPath);
    const handle = await open(path, 'w+').catch((error: unknown) => {
      files.release(path);
      throw ioError(path, 'create', error);
    });
    return new RawShardFile(files, path, handle, onWriteOut);
  }

  /** Adds bytes at the end; resolves once they are buffered or written. */
  async append(data: Uint8Array): Promise<void> {
    let from = 0;
    while (from < data.length) {
      if (this.buffered === 0 && data.length - from >= RAW_PIECE_BYTES) {
        // The caller's own bytes: written out before append resolves, since the caller may reuse them.
        await this.writing;
        await this.writeOut(data.subarray(from));
        break;
      }
      const taken = Math.min(data.length - from, RAW_PIECE_BYTES - this.buffered);
      this.buffer.set(data.subarray(from, from + taken), this.buffered);
      this.buffered += taken;
      from += taken;
      if (this.buffered === RAW_PIECE_BYTES) await this.handOff();
    }
    this.bytes += data.length;
  }

  /**
   * Everything appended, from the start, in pieces of at most RAW_PIECE_BYTES read into the append buffer
   * (appending is over by then): each piece is overwritten by the next, so use it before asking for the next.
   */
  async *pieces(): AsyncGenerator<Buffer> {
    await this.flush();
    const handle = this.open();
    for (let position = 0; position < this.bytes; ) {
      const piece = this.buffer.subarray(0, Math.min(RAW_PIECE_BYTES, this.bytes - position));
      const { bytesRead } = await handle.read(piece, 0, piece.length, position).catch((error: unknown) => {
        throw ioError(this.path, 'read', error);
      });
      if (bytesRead === 0)
        throw ioError(this.path, 'read', new Error('the file is shorter than what was written'));
      position += bytesRead;
      yield piece.subarray(0, bytesRead);
    }
  }

  /** Closes and deletes the file (also after a failure; a second call does nothing). */
  async remove(): Promise<void> {
    await this.writing.catch(() => undefined);
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) return;
    await handle.close().catch(() => undefined);
    await rm(this.path, { force: true });
    this.files.release(this.path);
  }

  /** Writes out everything appended so far; resolves once it is written. */
  async flush(): Promise<void> {
    await this.handOff();
    await this.writing;
  }

  /** Starts writing out the filled buffer once the one before is written, and goes on filling the other. */
  private async handOff(): Promise<void> {
    await this.writing;
    if (this.buffered === 0) return;
    this.writing = this.writeOut(this.buffer.subarray(0, this.buffered));
    // A failed write is reported by the next append, flush or read.
    this.writing.catch(() => undefined);
    [this.buffer, this.spare] = [this.spare, this.buffer];
    this.buffered = 0;
  }

  private async writeOut(data: Uint8Array): Promise<void> {
    const handle = this.open();
    let written = 0;
    try {
      while (written < data.length) written += (await handle.write(data, written)).bytesWritten;
    } catch (error) {
      throw ioError(this.path, 'write', error);
    }
    await this.onWriteOut?.(data);
  }

  private open(): FileHandle {
    if (!this.handle)
      throw new MegadocsError('IO', 'the temporary shard file was already removed', { where: this.path });
    return this.handle;
  }
}

function ioError(path: string, action: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `cannot ${action} the temporary shard file (${messageOf(error)})`, {
    where: path,
    hint: 'Check the disk space and permissions of the output directory',
    cause: error,
  });
}
