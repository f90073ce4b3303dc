// Atomic landing of output files: written under a temporary name in the same directory, renamed when complete.
// A killed run leaves only `*.tmp` files, never a partial file under a final name; abort() removes them.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm, writeFile } from 'node:fs/promises';
import { MegadocsError, messageOf } from '../errors.js';

/** The temporary name `path` is written under: same directory, so the final rename is atomic. */
export function temporaryName(path: string): string {
  return `${path}.${randomBytes(4).toString('hex')}.tmp`;
}

/**
 * Writes `data` (bytes, text, or pieces written one after another as they come) to `path` through the temporary
 * file `temporary`; on failure the temporary file is removed, `path` keeps what it held, and the error names
 * `path` (a MegadocsError from the pieces passes as is).
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | AsyncIterable<Uint8Array>,
  temporary = temporaryName(path),
): Promise<void> {
  try {
    await writeFile(temporary, data);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    if (error instanceof MegadocsError) throw error;
    throw new MegadocsError('IO', `cannot write the file (${messageOf(error)})`, {
      where: path,
      hint: 'Check free space and permissions of the output directory, then rerun the same command to continue',
      cause: error,
    });
  }
}

/**
 * Rewrites the small file `path` in place, for when the disk is too full for writeFileAtomic: only when `text`
 * fits in the blocks the file already holds, so no write needs new space. A kill in the middle would tear it:
 * a last resort. Returns whether it was rewritten.
 */
export async function rewriteInPlace(path: string, text: string): Promise<boolean> {
  const bytes = Buffer.from(text);
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r+');
    if (!(bytes.length <= (await handle.stat()).blocks * 512)) return false;
    await handle.write(bytes, 0, bytes.length, 0);
    await handle.truncate(bytes.length);
    return true;
  } catch {
    return false;
  } finally {
    await handle?.close();
  }
}

/** Lands files atomically and remembers the temporary files still being written, to remove them on abort. */
export class AtomicFiles {
  private readonly pending = new Set<string>();

  /** writeFileAtomic, with the temporary file removed by removeTemporaries() while it is being written. */
  async write(path: string, data: Uint8Array | string | AsyncIterable<Uint8Array>): Promise<void> {
    const temporary = this.temporary(path);
    try {
      await writeFileAtomic(path, data, temporary);
    } finally {
      this.release(temporary);
    }
  }

  /** A temporary name next to `path` that removeTemporaries() removes until it is released. */
  temporary(path: string): string {
    const temporary = temporaryName(path);
    this.pending.add(temporary);
    return temporary;
  }

  /** The temporary file was renamed or removed by its owner. */
  release(temporary: string): void {
    this.pending.delete(temporary);
  }

  /** Removes the temporary files of writes still in progress. */
  async removeTemporaries(): Promise<void> {
    await Promise.all([...this.pending].map((temporary) => rm(temporary, { force: true })));
    this.pending.clear();
  }
}

/** Runs landing tasks one at a time in the background: submit() waits for the previous task, so one is in flight. */
export class OneInFlight {
  private current: Promise<void> = Promise.resolve();
  private failure: unknown;

  /** Starts `task` once the previous one is done; rethrows the first failure of any earlier task. */
  async submit(task: () => Promise<void>): Promise<void> {
    await this.settle();
    this.current = task().catch((error: unknown) => {
      this.failure ??= error;
    });
  }

  /** Waits for the task in flight; rethrows the first failure. */
  async settle(): Promise<void> {
    await this.current;
    this.throwIfFailed();
  }

  /** Waits for the task in flight and ignores failures (used on abort). */
  async drain(): Promise<void> {
    await this.current;
  }

  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
