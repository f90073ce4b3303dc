// The run directory (`--out DIR`): one writer at a time, refuses to clobber, continues an unfinished run of the
// same config (or replaces it, reusing its journal), and keeps megadocs.json up to date, always atomically.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ZstdEngineChoice } from './codecs/zstd.js';
import { MegadocsError, messageOf } from './errors.js';
import { setAsideJournal } from './generate/journal-reuse.js';
import { LOCK_FILE, OutputLock } from './output-lock.js';
import { rewriteInPlace, writeFileAtomic } from './sinks/atomic.js';
import { dependencyVersions, VERSION } from './version.js';

export const MANIFEST_FILE = 'megadocs.json';
export const STATE_DIR = 'state';

/**
 * `incomplete`: the work ended but too much of it failed (see IncompleteRunError); continued like `interrupted`.
 * `budget-reached`: the dataset of the documents within `--max-output-tokens` / `--max-documents` is written; a
 * rerun with other budgets continues it, one with the same budgets has nothing to do.
 */
export type RunStatus = 'running' | 'complete' | 'failed' | 'interrupted' | 'incomplete' | 'budget-reached';

export interface RunManifest {
  megadocs: string;
  command: string;
  status: RunStatus;
  /** sha256 of the options that decide the output; a rerun must match it to continue. */
  configHash: string;
  /** The options that decide the output (hashed into configHash): a refused rerun is told what differs. */
  identity?: Record<string, unknown>;
  options: Record<string, unknown>;
  versions: Record<string, string>;
  startedAt: string;
  finishedAt?: string;
  error?: string;
  stats?: Record<string, unknown>;
  /** The figures planned at the start (lib/cost-plan.ts PlanFigures, or `error`) and, at the end, the actual ones. */
  plan?: { planned: Record<string, unknown>; actual?: Record<string, unknown> };
  /** How a `budget-reached` run stopped (lib/generate/budget.ts BudgetStop). */
  budget?: { limits: Record<string, number | undefined> } & Record<string, unknown>;
}

export interface OpenRunDirOptions {
  dir: string;
  command: string;
  /** Every resolved option, recorded in megadocs.json. */
  options: Record<string, unknown>;
  /** The options that decide the output bytes (default: all of `options`). */
  identity?: Record<string, unknown>;
  /** Empty a non-empty directory first. */
  overwrite?: boolean;
  /** The zstd engine the run compresses with (recorded with the versions). */
  zstdEngine?: ZstdEngineChoice;
  /**
   * A run of other options (or the other generating command) is replaced in place: its journal is set aside in
   * state/reused/ for the new run to replay answers from (`--reuse-journal`).
   */
  reuseJournal?: boolean;
  /** Told about a dead process's lock taken over, or a status that could not be recorded. */
  onWarning?: (message: string) => void;
  /** This run's `--max-output-tokens` / `--max-documents`: a `budget-reached` run with the same is complete. */
  budgetLimits?: Record<string, number | undefined>;
}

/** The commands that journal LLM answers: a changed run of either can reuse the other's answers. */
const JOURNAL_COMMANDS = ['generate', 'run'];

/** JSON with sorted keys, so the hash does not depend on the order options were set in. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}

export function hashConfig(identity: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(identity)).digest('hex');
}

function manifestText(manifest: RunManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

async function readManifest(dir: string): Promise<RunManifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as RunManifest;
  } catch {
    return undefined;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new MegadocsError('IO', `cannot read the output directory (${(error as Error).message})`, {
      where: dir,
    });
  }
}

function shown(value: unknown): string {
  if (value === undefined) return 'not set';
  const text = canonicalJson(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One transform's record as a reader knows it: its name, version and module. */
function transformLabel(record: unknown): string {
  const { name, version, module } = (record ?? {}) as { name?: string; version?: string; module?: string };
  return `"${name}"${version ? ` version ${version}` : ''}${module ? ` (${module})` : ''}`;
}

/** What differs between a run's identity and a rerun's, option by option and transform by transform. */
export function describeChanges(
  previous: Record<string, unknown>,
  current: Record<string, unknown>,
): string[] {
  const changes: string[] = [];
  for (const key of [...new Set([...Object.keys(previous), ...Object.keys(current)])].sort()) {
    const before = previous[key];
    const after = current[key];
    if (canonicalJson(before) === canonicalJson(after)) continue;
    if (key !== 'transforms') {
      changes.push(`${key} was ${shown(before)}, now ${shown(after)}`);
      continue;
    }
    const was = (before ?? {}) as Record<string, unknown[]>;
    const now = (after ?? {}) as Record<string, unknown[]>;
    for (const point of [...new Set([...Object.keys(was), ...Object.keys(now)])].sort()) {
      const length = Math.max(was[point]?.length ?? 0, now[point]?.length ?? 0);
      for (let index = 0; index < length; index += 1) {
        const old = was[point]?.[index];
        const fresh = now[point]?.[index];
        if (canonicalJson(old) === canonicalJson(fresh)) continue;
        const at = `transform ${point}[${index}]`;
        if (old === undefined) changes.push(`${at} ${transformLabel(fresh)} was added`);
        else if (fresh === undefined) changes.push(`${at} ${transformLabel(old)} was removed`);
        else changes.push(`${at} ${transformLabel(fresh)} changed (was ${shown(old)}, now ${shown(fresh)})`);
      }
    }
  }
  return changes;
}

/** A `budget-reached` run rerun with the same budgets: it would write the same dataset again. */
function sameBudgetReached(previous: RunManifest, limits: Record<string, number | undefined> = {}): boolean {
  return (
    previous.status === 'budget-reached' &&
    canonicalJson(previous.budget?.limits ?? {}) === canonicalJson(limits)
  );
}

/** Removes everything in `dir` except the names in `keep`. */
async function clearDir(dir: string, keep: string[] = []): Promise<void> {
  for (const name of await listDir(dir)) {
    if (!keep.includes(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

/**
 * An open run directory, written by this process alone (its lock is held until release()). `resuming` is true
 * when an unfinished run of the same config is continued; `alreadyComplete` when it holds this very run, complete
 * (the caller does no work and reports `recordedStats`).
 */
export class RunDir {
  readonly stateDir: string;

  private constructor(
    readonly dir: string,
    readonly resuming: boolean,
    private manifest: RunManifest,
    private readonly lock: OutputLock,
    private readonly onWarning: (message: string) => void,
    readonly alreadyComplete = false,
  ) {
    this.stateDir = join(dir, STATE_DIR);
  }

  /** Takes the directory's lock (a second writer is refused), then checks and prepares the directory. */
  static async open(options: OpenRunDirOptions): Promise<RunDir> {
    const lock = OutputLock.acquire(options.dir, options.command, options.onWarning);
    try {
      return await RunDir.prepare(options, lock);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  private static async prepare(options: OpenRunDirOptions, lock: OutputLock): Promise<RunDir> {
    const { dir, command } = options;
    const configHash = hashConfig(options.identity ?? options.options);
    const entries = (await listDir(dir)).filter((name) => name !== LOCK_FILE);
    let resuming = false;
    if (entries.length > 0 && options.overwrite) {
      await clearDir(dir, [LOCK_FILE]);
    } else if (entries.length > 0) {
      const previous = await readManifest(dir);
      if (!previous) {
        throw new MegadocsError('OUTPUT_EXISTS', 'the output directory is not empty', {
          where: dir,
          hint: 'Pass --overwrite to replace its contents, or choose another --out',
        });
      }
      const replaceable = JOURNAL_COMMANDS.includes(previous.command) && JOURNAL_COMMANDS.includes(command);
      if (previous.command !== command || previous.configHash !== configHash) {
        if (options.reuseJournal && replaceable) {
          // Set aside before the new manifest is written: a crash in between leaves the old run continuable.
          await setAsideJournal(join(dir, STATE_DIR));
          await clearDir(dir, [STATE_DIR, MANIFEST_FILE, LOCK_FILE]);
          return RunDir.create(options, configHash, false, lock);
        }
        const changes =
          previous.command === command && previous.identity
            ? `: ${describeChanges(previous.identity, options.identity ?? options.options).join('; ')}`
            : '';
        throw new MegadocsError(
          'OUTPUT_EXISTS',
          `the output directory holds a \`megadocs ${previous.command}\` run with different options${changes}`,
          {
            where: dir,
            hint: `Rerun with the same options to continue it, ${
              replaceable ? 'pass --reuse-journal to start this run here and reuse its paid answers, ' : ''
            }pass --overwrite, or choose another --out`,
          },
        );
      }
      // A requeued job that already finished: nothing to do, nothing written.
      if (previous.status === 'complete' || sameBudgetReached(previous, options.budgetLimits))
        return new RunDir(dir, false, previous, lock, () => {}, true);
      // Same command and options, unfinished: keep the journal, redo the dataset files.
      await clearDir(dir, [STATE_DIR, MANIFEST_FILE, LOCK_FILE]);
      resuming = true;
    }
    return RunDir.create(options, configHash, resuming, lock);
  }

  /** Writes the new run's manifest (status running) into the prepared directory. */
  private static async create(
    options: OpenRunDirOptions,
    configHash: string,
    resuming: boolean,
    lock: OutputLock,
  ): Promise<RunDir> {
    const { dir, command } = options;
    await mkdir(join(dir, STATE_DIR), { recursive: true }).catch((error: unknown) => {
      throw new MegadocsError('IO', `cannot create the state folder (${messageOf(error)})`, {
        where: join(dir, STATE_DIR),
        hint: 'Check free space and permissions of the output directory',
        cause: error,
      });
    });
    const manifest: RunManifest = {
      megadocs: VERSION,
      command,
      status: 'running',
      configHash,
      identity: options.identity ?? options.options,
      options: options.options,
      versions: dependencyVersions(options.zstdEngine),
      startedAt: new Date().toISOString(),
    };
    const runDir = new RunDir(dir, resuming, manifest, lock, options.onWarning ?? (() => {}));
    await runDir.save();
    return runDir;
  }

  /** Records the figures planned at the start (`plan.planned`). */
  async recordPlan(planned: Record<string, unknown>): Promise<void> {
    this.manifest = { ...this.manifest, plan: { planned } };
    await this.save();
  }

  /** The figures planned at the start, once recorded. */
  get planned(): Record<string, unknown> | undefined {
    return this.manifest.plan?.planned;
  }

  /** The stats the complete run recorded in megadocs.json. */
  get recordedStats(): Record<string, unknown> {
    return this.manifest.stats ?? {};
  }

  /**
   * Marks the run complete with its final stats (written after the dataset's own index), or `budget-reached` with
   * how it stopped when a budget cut its output.
   */
  async complete(
    stats: Record<string, unknown>,
    budget?: RunManifest['budget'],
    actual?: Record<string, unknown>,
  ): Promise<void> {
    const { plan } = this.manifest;
    this.manifest = {
      ...this.manifest,
      status: budget ? 'budget-reached' : 'complete',
      stats,
      ...(budget && { budget }),
      ...(plan && actual && { plan: { ...plan, actual } }),
      finishedAt: new Date().toISOString(),
    };
    await this.save();
  }

  /** Records why the run stopped; a rerun of the same command continues it. */
  async stop(
    status: Exclude<RunStatus, 'running' | 'complete'>,
    error?: unknown,
    stats?: Record<string, unknown>,
  ): Promise<void> {
    const message = error instanceof Error ? error.message : error === undefined ? undefined : String(error);
    this.manifest = { ...this.manifest, status, error: message, stats, finishedAt: new Date().toISOString() };
    // The disk may be full: then the manifest is rewritten in the space it holds, if it fits; either way the
    // error that stopped the run is the one reported.
    await this.save().catch(async (failure: unknown) => {
      const path = join(this.dir, MANIFEST_FILE);
      // The status matters more than the figures: the planned figures, then the stats, go when that is what fits.
      const { plan: _plan, ...withoutPlan } = this.manifest;
      const { stats: _stats, ...statusOnly } = withoutPlan;
      for (const manifest of [this.manifest, withoutPlan, statusOnly]) {
        if (await rewriteInPlace(path, manifestText(manifest))) return;
      }
      this.onWarning(`could not record status ${status} in ${MANIFEST_FILE}: ${messageOf(failure)}`);
    });
  }

  /** Gives up the directory's lock (also done when the process exits). */
  release(): void {
    this.lock.release();
  }

  private async save(): Promise<void> {
    await writeFileAtomic(join(this.dir, MANIFEST_FILE), manifestText(this.manifest));
  }
}
