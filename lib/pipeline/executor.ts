// The executor every command runs on: resolves the inputs and this rank's share, the transforms, the run
// directory (refused, continued or new), the LLM backend and journal when the command generates, then runs
// the command's work and records how it ended in megadocs.json, whatever happens.
import { join } from 'node:path';
import { rejectOnAbort } from '../abort.js';
import type { LlmBackend } from '../backends/backend.js';
import type { ZstdEngineChoice } from '../codecs/zstd.js';
import { IncompleteRunError } from '../errors.js';
import type { GenerationBudget } from '../generate/budget.js';
import { Journal } from '../generate/journal.js';
import { ReusedAnswers } from '../generate/journal-reuse.js';
import { type BackendSettings, openBackend } from '../generate/setup.js';
import type { HubInputOptions } from '../hub/shard.js';
import { rankDirName } from '../merge.js';
import { planShards } from '../plan.js';
import type { Rank } from '../ranks.js';
import { hashConfig, RunDir } from '../rundir.js';
import { expandInputs, inputIdentity, knownInputBytes } from '../sources/inputs.js';
import type { ShardRef } from '../sources/types.js';
import { tokenizerIdentity } from '../tokenize/tokenizer-identity.js';
import {
  type ResolvedTransforms,
  resolveTransforms,
  type TransformModule,
  type TransformPoint,
  type Transforms,
  transformRecords,
} from './transforms.js';

export type CommandName = 'pack' | 'generate' | 'run';

/** Where this worker writes: OUT itself, or OUT/rank-NNNNN/ when the work is split among ranks. */
export function rankOutput(out: string, rank: Rank | undefined): string {
  return rank && rank.worldSize > 1 ? join(out, rankDirName(rank.rank)) : out;
}

/** What a command hands the executor. */
export interface Job<C, S> {
  command: CommandName;
  /** The validated config (recorded in megadocs.json, passed to transform factories). */
  config: C;
  inputs: string[];
  out: string;
  overwrite: boolean;
  /** Replace a generating run of other options in OUT, replaying its journaled answers (`--reuse-journal`). */
  reuseJournal?: boolean;
  rank?: Rank;
  /**
   * The options that decide the output bytes (the executor adds the input files and the transforms, and puts a
   * tokenizer file's hash in place of its path).
   */
  identity: Record<string, unknown>;
  /** The command's insertion points, and the transforms given for them. */
  points: readonly TransformPoint[];
  transforms?: Transforms<C>;
  transformModules?: readonly TransformModule[];
  /** The servers (or local model) to open, when the command generates. */
  llm?: Omit<BackendSettings, 'signal' | 'onWarning'>;
  hub?: HubInputOptions;
  /** The zstd engine the work compresses with, recorded in megadocs.json. */
  zstdEngine?: ZstdEngineChoice;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Told the total input bytes once known (for the ETA). */
  onInputBytes?: (bytes: number | undefined) => void;
  /** What the interrupted rejection says to do. */
  abortHint?: string;
  /** The counters recorded in megadocs.json when the run stops before the end. */
  stopStats: () => Record<string, unknown>;
  /**
   * megadocs.json `plan`: the planned figures (lib/cost-plan.ts) once the backend is open, before any document,
   * and the same figures from the summary when the run ends with one.
   */
  plan?: {
    planned(shards: ShardRef[], backend?: LlmBackend): Promise<Record<string, unknown>>;
    actual(summary: S, planned: Record<string, unknown> | undefined): Record<string, unknown>;
  };
  /** `--max-output-tokens` / `--max-documents`: a run cut by it ends `budget-reached`. */
  budget?: GenerationBudget;
  /** The command's own work; undefined when it stopped early on request (the run stays unfinished). */
  work: (context: JobContext) => Promise<S | undefined>;
}

/** What the command's work gets from the executor. */
export interface JobContext {
  shards: ShardRef[];
  /** This worker's output directory. */
  out: string;
  runDir: RunDir;
  transforms: ResolvedTransforms;
  backend?: LlmBackend;
  journal?: Journal;
  /** Answers of replaced runs (OUT/state/reused/), looked up by request key when the journal has none. */
  reusedAnswers?: ReusedAnswers;
}

/**
 * Runs the job; a rerun of a complete run with the same options does nothing and returns the summary that run
 * recorded, with `alreadyComplete: true`.
 */
export async function executeJob<C, S extends object>(job: Job<C, S>): Promise<S | undefined> {
  const transforms = await resolveTransforms(
    job.command,
    job.points,
    job.config,
    job.transforms,
    job.transformModules,
  );
  const allShards = await expandInputs(job.inputs, { hub: job.hub });
  const shards = job.rank && job.rank.worldSize > 1 ? planShards(allShards, job.rank) : allShards;
  const out = rankOutput(job.out, job.rank);
  job.onInputBytes?.(knownInputBytes(shards));
  const records = transformRecords(transforms);
  // The inputs count by the files they resolve to and their stable names, not as typed (expandLocalInput).
  const { inputs: _inputsAsTyped, ...decisive } = job.identity;
  const identity = {
    ...decisive,
    // A tiktoken rank file counts by its contents: the same file spelled another way continues the run.
    ...(typeof job.identity.tokenizer === 'string' && {
      tokenizer: await tokenizerIdentity(job.identity.tokenizer),
    }),
    inputFiles: inputIdentity(shards),
    // The Hub subset and split chosen (`--subset`, `--split`) decide the inputs too.
    ...(job.hub?.selection && { hubSelection: job.hub.selection }),
    ...(Object.keys(records).length > 0 ? { transforms: records } : {}),
  };
  const runDir = await RunDir.open({
    dir: out,
    command: job.command,
    options: {
      ...(job.config as Record<string, unknown>),
      ...(identity.transforms ? { transforms: records } : {}),
    },
    identity,
    overwrite: job.overwrite,
    reuseJournal: job.reuseJournal,
    zstdEngine: job.zstdEngine,
    onWarning: job.onWarning,
    budgetLimits: job.budget?.limits,
  });
  if (runDir.alreadyComplete) {
    runDir.release();
    return { ...runDir.recordedStats, alreadyComplete: true } as unknown as S;
  }
  let backend: LlmBackend | undefined;
  let journal: Journal | undefined;
  let reusedAnswers: ReusedAnswers | undefined;
  try {
    if (job.llm) {
      // Opening waits for a server that may never answer: Ctrl-C ends that wait too, and a backend that opens
      // after it is closed.
      const opening = openBackend({ ...job.llm, signal: job.signal, onWarning: job.onWarning });
      backend = await Promise.race([opening, rejectOnAbort(job.signal, job.abortHint)]).catch((error) => {
        void opening.then((late) => late.close()).catch(() => {});
        throw error;
      });
      journal = await Journal.open({
        stateDir: runDir.stateDir,
        configHash: hashConfig(identity),
        onWarning: job.onWarning,
      });
      reusedAnswers = await ReusedAnswers.open(runDir.stateDir);
    }
    if (job.plan)
      await runDir.recordPlan(
        await Promise.race([job.plan.planned(shards, backend), rejectOnAbort(job.signal, job.abortHint)]),
      );
    const summary = await Promise.race([
      job.work({ shards, out, runDir, transforms, backend, journal, reusedAnswers }),
      rejectOnAbort(job.signal, job.abortHint),
    ]);
    if (summary === undefined) await runDir.stop('interrupted', 'stopped early on request', job.stopStats());
    else
      await runDir.complete(
        { ...(summary as Record<string, unknown>) },
        job.budget?.reached,
        job.plan?.actual(summary, runDir.planned),
      );
    return summary;
  } catch (error) {
    const status =
      error instanceof IncompleteRunError ? 'incomplete' : job.signal?.aborted ? 'interrupted' : 'failed';
    await runDir.stop(status, error, job.stopStats());
    throw error;
  } finally {
    await journal?.close();
    await reusedAnswers?.close();
    await backend?.close();
    runDir.release();
  }
}
