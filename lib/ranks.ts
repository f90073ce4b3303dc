// Which worker this process is (`rank`) among how many (`worldSize`): from --rank/--world-size, or from the
// variables Slurm job arrays, Slurm tasks and Kubernetes Indexed Jobs set. The environment is passed in.
import { MegadocsError } from './errors.js';

export interface Rank {
  rank: number;
  worldSize: number;
}

export interface ResolvedRank extends Rank {
  /** Where the values came from (`--rank/--world-size`, `SLURM_ARRAY_TASK_ID/...`), for logs and errors. */
  source: string;
}

type Env = Record<string, string | undefined>;

/**
 * The rank from flags first, else the environment: a Slurm array task (SLURM_ARRAY_TASK_ID minus
 * SLURM_ARRAY_TASK_MIN, divided by SLURM_ARRAY_TASK_STEP, among SLURM_ARRAY_TASK_COUNT), combined with the
 * Slurm task (SLURM_PROCID among SLURM_NTASKS) when a step runs several; else JOB_COMPLETION_INDEX (Kubernetes
 * Indexed Job; its size comes from --world-size). Without any of these: rank 0 of 1.
 */
export function resolveRank(flags: Partial<Rank>, env: Env): ResolvedRank {
  if (flags.rank !== undefined) {
    if (flags.worldSize === undefined) {
      throw new MegadocsError('BAD_OPTION', '--rank needs --world-size', {
        where: '--rank',
        hint: 'Pass --world-size N as well (the number of workers)',
      });
    }
    return checked({ rank: flags.rank, worldSize: flags.worldSize, source: '--rank/--world-size' });
  }
  const fromEnv = slurmRank(env) ?? indexedJobRank(env, flags.worldSize);
  if (!fromEnv) return checked({ rank: 0, worldSize: flags.worldSize ?? 1, source: 'default' });
  if (flags.worldSize !== undefined && flags.worldSize !== fromEnv.worldSize) {
    throw new MegadocsError(
      'BAD_OPTION',
      `--world-size ${flags.worldSize} disagrees with ${fromEnv.source}, which gives ${fromEnv.worldSize} workers`,
      {
        where: '--world-size',
        hint: 'Leave --world-size out, or pass --rank as well to override the environment',
      },
    );
  }
  return checked(fromEnv);
}

function slurmRank(env: Env): ResolvedRank | undefined {
  const array = env.SLURM_ARRAY_TASK_ID !== undefined;
  const tasks = integer(env, 'SLURM_NTASKS', 1) ?? 1;
  const task = tasks > 1 ? (integer(env, 'SLURM_PROCID', 0) ?? 0) : 0;
  if (!array) {
    if (env.SLURM_PROCID === undefined || tasks <= 1) return undefined;
    return { rank: task, worldSize: tasks, source: 'SLURM_PROCID/SLURM_NTASKS' };
  }
  const id = integer(env, 'SLURM_ARRAY_TASK_ID', 0) as number;
  const min = integer(env, 'SLURM_ARRAY_TASK_MIN', 0) ?? 0;
  const step = integer(env, 'SLURM_ARRAY_TASK_STEP', 1) ?? 1;
  const count = integer(env, 'SLURM_ARRAY_TASK_COUNT', 1);
  if (count === undefined) {
    throw new MegadocsError('BAD_OPTION', 'SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not', {
      where: 'SLURM_ARRAY_TASK_COUNT',
      hint: 'Run under a Slurm job array (sbatch --array), or pass --rank and --world-size',
    });
  }
  const arrayRank = (id - min) / step;
  if (!Number.isInteger(arrayRank)) {
    throw new MegadocsError(
      'BAD_OPTION',
      `SLURM_ARRAY_TASK_ID ${id} is not MIN ${min} plus a multiple of STEP ${step}`,
      {
        where: 'SLURM_ARRAY_TASK_ID',
        hint: 'Use a plain --array=0-N range, or pass --rank and --world-size',
      },
    );
  }
  const source =
    tasks > 1
      ? 'SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT x SLURM_PROCID/SLURM_NTASKS'
      : 'SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT';
  return { rank: arrayRank * tasks + task, worldSize: count * tasks, source };
}

function indexedJobRank(env: Env, worldSize: number | undefined): ResolvedRank | undefined {
  const index = integer(env, 'JOB_COMPLETION_INDEX', 0);
  if (index === undefined) return undefined;
  if (worldSize === undefined) {
    throw new MegadocsError(
      'BAD_OPTION',
      'JOB_COMPLETION_INDEX is set but the number of workers is unknown',
      {
        where: 'JOB_COMPLETION_INDEX',
        hint: "Pass --world-size with the Job's spec.completions",
      },
    );
  }
  return { rank: index, worldSize, source: 'JOB_COMPLETION_INDEX/--world-size' };
}

/** A whole number >= min from the environment, undefined when unset; anything else is an error naming the variable. */
function integer(env: Env, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new MegadocsError('BAD_OPTION', `${name}="${raw}" is not a whole number >= ${min}`, {
      where: name,
      hint: 'Unset it, or pass --rank and --world-size',
    });
  }
  return value;
}

function checked(resolved: ResolvedRank): ResolvedRank {
  const { rank, worldSize, source } = resolved;
  if (!Number.isInteger(worldSize) || worldSize < 1) {
    throw new MegadocsError('BAD_OPTION', `the world size must be a whole number >= 1, got ${worldSize}`, {
      where: source,
      hint: 'Pass --world-size N',
    });
  }
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new MegadocsError('BAD_OPTION', `rank ${rank} is outside 0..${worldSize - 1}`, {
      where: source,
      hint: 'Ranks count from 0 to world size - 1',
    });
  }
  return resolved;
}
