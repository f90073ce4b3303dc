// One writer per output directory: OUT/.megadocs.lock, created with O_EXCL, names the writing process (PID,
// host, since when). A second writer is refused at once; a lock left by a dead process on this host is taken over.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { MegadocsError, messageOf } from './errors.js';

export const LOCK_FILE = '.megadocs.lock';

/** What the lock file holds. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  command: string;
}

/** Lock files this process holds, so a second writer inside the same process is refused too. */
const heldHere = new Set<string>();

function describeHolder(holder: LockHolder): string {
  return `\`megadocs ${holder.command}\` (PID ${holder.pid} on host ${holder.host}, since ${holder.since})`;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return Number.isInteger(holder.pid) && typeof holder.host === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

function sameHolder(a: LockHolder | undefined, b: LockHolder | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.host === b.host && a.since === b.since;
}

/** Whether the process that wrote `holder` on this host is gone (its PID is free, or it is this process's own PID). */
function isDeadHere(holder: LockHolder, path: string): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return !heldHere.has(path);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function ioError(what: string, where: string, error: unknown): MegadocsError {
  return new MegadocsError('IO', `${what} (${messageOf(error)})`, {
    where,
    hint: 'Choose an --out you can write to, or fix its permissions (chmod, chattr -i) and free space',
    cause: error,
  });
}

function lockedError(dir: string, path: string, holder: LockHolder | undefined): MegadocsError {
  if (!holder) {
    return new MegadocsError('OUTPUT_EXISTS', 'another megadocs process is starting to write here', {
      where: dir,
      hint: `Wait for it, or choose another --out; if no megadocs process writes here, delete ${path}`,
    });
  }
  const elsewhere = holder.host !== hostname();
  return new MegadocsError(
    'OUTPUT_EXISTS',
    `another process writes this output directory: ${describeHolder(holder)}`,
    {
      where: dir,
      hint: elsewhere
        ? `Wait for it to finish, or choose another --out; if that process is no longer running on ${holder.host}, delete ${path}`
        : `Wait for it to finish (or stop it), or choose another --out; if PID ${holder.pid} is not megadocs, delete ${path}`,
    },
  );
}

/** The exclusive right to write one output directory, from acquire() until release() or the process's exit. */
export class OutputLock {
  private readonly onExit = () => this.release();

  private constructor(
    readonly path: string,
    private readonly holder: LockHolder,
  ) {
    heldHere.add(path);
    process.on('exit', this.onExit);
  }

  /**
   * Creates `dir` if needed and takes its lock. Throws OUTPUT_EXISTS naming the holder when a live process has
   * it; a lock whose process died on this host is taken over, and `onWarning` is told.
   */
  static acquire(dir: string, command: string, onWarning: (message: string) => void = () => {}): OutputLock {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw ioError('cannot create the output directory', dir, error);
    }
    const path = join(resolve(dir), LOCK_FILE);
    const holder: LockHolder = {
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
      command,
    };
    // Each pass either takes the lock, refuses, or clears a dead holder's lock; a few passes settle any race.
    for (let pass = 0; pass < 4; pass += 1) {
      if (OutputLock.create(path, holder)) return new OutputLock(path, holder);
      const current = readHolder(path);
      if (!current || !isDeadHere(current, path)) {
        if (current || pass > 0) throw lockedError(dir, path, current);
        continue; // the file vanished or was being written: look once more
      }
      if (OutputLock.clearDead(path, current)) {
        onWarning(`${dir}: took over the lock of ${describeHolder(current)}, which is no longer running`);
      }
    }
    throw lockedError(dir, path, readHolder(path));
  }

  /** Writes the lock file if none exists; false when another one is there. */
  private static create(path: string, holder: LockHolder): boolean {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw ioError('cannot create the lock file of the output directory', path, error);
    }
    try {
      writeSync(fd, `${JSON.stringify(holder)}\n`);
    } catch (error) {
      closeSync(fd);
      unlinkSync(path);
      throw ioError('cannot write the lock file of the output directory', path, error);
    }
    closeSync(fd);
    return true;
  }

  /**
   * Removes the lock of the dead process `dead`: moved aside first, so a lock that a live process took in the
   * meantime is put back instead of deleted. True when the dead holder's lock was removed.
   */
  private static clearDead(path: string, dead: LockHolder): boolean {
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch {
      return false; // someone else cleared it first
    }
    if (!sameHolder(readHolder(aside), dead)) {
      renameSync(aside, path);
      return false;
    }
    unlinkSync(aside);
    return true;
  }

  /** Gives the directory up (idempotent); the lock file is removed only while it is still this holder's. */
  release(): void {
    if (!heldHere.delete(this.path)) return;
    process.off('exit', this.onExit);
    if (!sameHolder(readHolder(this.path), this.holder)) return;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone: nothing to give up.
    }
  }
}
