// The simulated vLLM engine behind test/helpers/vllm-sim.ts: continuous batching in decode steps (admission
// FCFS under max_num_seqs and a KV cache in tokens, recompute preemption of the youngest sequence), on real timers.
import { performance } from 'node:perf_hooks';

/** The engine's parameters (times in simulated ms; the engine multiplies them by timeScale). */
export interface EngineParameters {
  maxNumSeqs: number;
  kvCacheTokens: number;
  prefillTokensPerS: number;
  decodeBaseMs: number;
  decodePerSeqMs: number;
  timeScale: number;
}

/** One HTTP completion request: `outputTokens.length` samples (engine requests) sharing one prompt. */
export interface EngineGroup {
  promptTokens: number;
  /** Tokens each sample generates before it finishes. */
  outputTokens: number[];
  /** Called once every sample has finished. */
  onDone: () => void;
}

interface Sequence {
  group: GroupState;
  target: number;
  generated: number;
  arrivedAt: number;
  /** Steps started before it arrived (its wait in steps is counted from there). */
  arrivedAtStep: number;
  scheduled: boolean;
}

interface GroupState extends EngineGroup {
  /** Samples in the running batch: the prompt's KV is held while any is. */
  running: number;
  unfinished: number;
  aborted: boolean;
  /** Whether its prompt was prefilled once already (counted once in promptTokens, whatever n). */
  prefilled: boolean;
}

/** Most entries kept in each per-sample or per-step list of EngineStats (later ones are dropped). */
const MAX_SAMPLES = 200_000;

export interface EngineStats {
  /** Engine requests (samples) submitted, and finished. */
  submitted: number;
  finished: number;
  /** Prompt tokens, once per request (whatever its n) at its first prefill (vllm:prompt_tokens_total). */
  promptTokens: number;
  /** Requests whose prompt was prefilled (once each, whatever n). */
  prefilledRequests: number;
  /** Tokens prefilled again after a preemption (recompute). */
  recomputedTokens: number;
  generatedTokens: number;
  preemptions: number;
  /** Per engine request, from arrival to its first scheduling: decode steps started meanwhile, and real ms. */
  queueWaitSteps: number[];
  queueWaitMs: number[];
  /** The waiting queue's length at the start of each step. */
  waitingPerStep: number[];
  maxRunning: number;
  maxWaiting: number;
  steps: number;
  /** Sum over steps of the batch size (mean batch = runningSum / steps). */
  runningSum: number;
  /** Real ms the engine spent in steps (simulated ms x timeScale). */
  busyMs: number;
}

export function emptyEngineStats(): EngineStats {
  return {
    submitted: 0,
    finished: 0,
    promptTokens: 0,
    prefilledRequests: 0,
    recomputedTokens: 0,
    generatedTokens: 0,
    preemptions: 0,
    queueWaitSteps: [],
    queueWaitMs: [],
    waitingPerStep: [],
    maxRunning: 0,
    maxWaiting: 0,
    steps: 0,
    runningSum: 0,
    busyMs: 0,
  };
}

function record(list: number[], value: number): void {
  if (list.length < MAX_SAMPLES) list.push(value);
}

/**
 * Continuous batching, one decode step at a time. A step: make room for one more token per running sequence
 * (preempting the youngest while the KV cache would overflow); when none was preempted, admit waiting sequences
 * FCFS while the batch has room and their KV fits (their prefill, tokens / prefillTokensPerS, is added to the
 * step); then every running sequence gains one token after (decodeBaseMs + decodePerSeqMs x batch) x timeScale.
 * Steps are simulated in order on a clock that follows real time: one timer per due step, and steps shorter
 * than a timer's resolution are run together when it fires (so the event loop is not the bottleneck).
 */
export class VllmEngine {
  stats = emptyEngineStats();
  /** Waiting sequences: `front` (preempted ones, the last preempted next) before `queue` from `head` on. */
  private front: Sequence[] = [];
  private queue: Sequence[] = [];
  private head = 0;
  private running: Sequence[] = [];
  private kvUsed = 0;
  private stepsStarted = 0;
  /** Real time at which the step in progress (or, just kicked, the first one) ends; undefined while idle. */
  private stepEndsAt: number | undefined;
  /** Whether a step is in progress (false when a kick starts the first one). */
  private stepping = false;
  private timer: NodeJS.Timeout | undefined;
  private kickPending = false;

  constructor(private readonly parameters: EngineParameters) {}

  get runningCount(): number {
    return this.running.length;
  }

  get waitingCount(): number {
    return this.front.length + this.queue.length - this.head;
  }

  /** KV cache in use, 0..1 (vllm:kv_cache_usage_perc). */
  get kvUsage(): number {
    return this.kvUsed / this.parameters.kvCacheTokens;
  }

  /** Queues the samples of one request; returns a function that aborts them (the client went away). */
  submit(group: EngineGroup): () => void {
    const state: GroupState = {
      ...group,
      running: 0,
      unfinished: group.outputTokens.length,
      aborted: false,
      prefilled: false,
    };
    const arrivedAt = performance.now();
    for (const target of group.outputTokens) {
      this.queue.push({
        group: state,
        target,
        generated: 0,
        arrivedAt,
        arrivedAtStep: this.stepsStarted,
        scheduled: false,
      });
    }
    this.stats.submitted += group.outputTokens.length;
    this.stats.maxWaiting = Math.max(this.stats.maxWaiting, this.waitingCount);
    this.kick();
    return () => this.abort(state);
  }

  /** Stops the timers (the server is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.stepEndsAt = undefined;
    this.stepping = false;
  }

  /** Starts stepping when idle; on the next turn of the event loop so that a burst of arrivals is admitted at once. */
  private kick(): void {
    if (this.stepEndsAt !== undefined || this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      if (this.stepEndsAt !== undefined) return;
      this.stepEndsAt = performance.now();
      this.stepping = false;
      this.advance();
    });
  }

  /** Finishes every step that is due, starts the next, and sets the timer for its end. */
  private advance(): void {
    const now = performance.now();
    while (this.stepEndsAt !== undefined && this.stepEndsAt <= now) {
      const startedAt = this.stepEndsAt;
      if (this.stepping) this.finishStep();
      const duration = this.startStep(startedAt);
      this.stepping = duration !== undefined;
      this.stepEndsAt = duration === undefined ? undefined : startedAt + duration;
    }
    if (this.stepEndsAt !== undefined) {
      this.timer = setTimeout(() => this.advance(), Math.max(0, this.stepEndsAt - performance.now()));
    }
  }

  /** Schedules one step at real time `at`; returns its real duration in ms, undefined when there is no work. */
  private startStep(at: number): number | undefined {
    const { maxNumSeqs, kvCacheTokens, prefillTokensPerS, decodeBaseMs, decodePerSeqMs, timeScale } =
      this.parameters;
    let preempted = false;
    // The oldest sequence alone always fits: its prompt and max_tokens are within max_model_len <= the cache.
    while (this.running.length > 1 && this.kvUsed + this.running.length > kvCacheTokens) {
      this.preempt(this.running.pop()!);
      preempted = true;
    }
    const waitingAtStart = this.waitingCount;
    let prefillTokens = 0;
    while (!preempted && this.running.length < maxNumSeqs) {
      const next = this.peekWaiting();
      if (!next) break;
      const cost = (next.group.running > 0 ? 0 : next.group.promptTokens) + next.generated;
      if (this.kvUsed + cost + this.running.length + 1 > kvCacheTokens) break;
      this.takeWaiting();
      this.kvUsed += cost;
      next.group.running += 1;
      this.running.push(next);
      prefillTokens += cost;
      if (next.scheduled) this.stats.recomputedTokens += cost;
      else this.schedule(next, at);
    }
    if (this.running.length === 0) return undefined;
    const { stats } = this;
    this.stepsStarted += 1;
    stats.steps += 1;
    stats.runningSum += this.running.length;
    stats.maxRunning = Math.max(stats.maxRunning, this.running.length);
    record(stats.waitingPerStep, waitingAtStart);
    const simulatedMs =
      decodeBaseMs + decodePerSeqMs * this.running.length + (prefillTokens * 1000) / prefillTokensPerS;
    const duration = simulatedMs * timeScale;
    stats.busyMs += duration;
    return duration;
  }

  /** The step's end: every running sequence gains one token; finished ones leave and answer when their request is whole. */
  private finishStep(): void {
    this.kvUsed += this.running.length;
    this.stats.generatedTokens += this.running.length;
    let kept = 0;
    for (const sequence of this.running) {
      sequence.generated += 1;
      if (sequence.generated < sequence.target) {
        this.running[kept++] = sequence;
        continue;
      }
      this.release(sequence);
      this.stats.finished += 1;
      sequence.group.unfinished -= 1;
      if (sequence.group.unfinished === 0) sequence.group.onDone();
    }
    this.running.length = kept;
  }

  private schedule(sequence: Sequence, at: number): void {
    sequence.scheduled = true;
    if (!sequence.group.prefilled) {
      this.stats.promptTokens += sequence.group.promptTokens;
      this.stats.prefilledRequests += 1;
    }
    sequence.group.prefilled = true;
    record(this.stats.queueWaitSteps, this.stepsStarted - sequence.arrivedAtStep);
    record(this.stats.queueWaitMs, Math.max(0, at - sequence.arrivedAt));
  }

  /** Frees a sequence's KV: its own tokens, and the prompt's when it was the last of its request running. */
  private release(sequence: Sequence): void {
    sequence.group.running -= 1;
    this.kvUsed -= sequence.generated + (sequence.group.running === 0 ? sequence.group.promptTokens : 0);
  }

  /** Recompute preemption: the sequence loses its KV and waits first in line, keeping its tokens to re-prefill. */
  private preempt(sequence: Sequence): void {
    this.release(sequence);
    this.stats.preemptions += 1;
    this.front.push(sequence);
  }

  private peekWaiting(): Sequence | undefined {
    return this.front.at(-1) ?? this.queue[this.head];
  }

  private takeWaiting(): void {
    if (this.front.length > 0) {
      this.front.pop();
      return;
    }
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops a request's samples wherever they are (vLLM aborts a request whose client disconnected). */
  private abort(group: GroupState): void {
    if (group.unfinished === 0 || group.aborted) return;
    group.aborted = true;
    this.running = this.running.filter((sequence) => {
      if (sequence.group !== group) return true;
      this.release(sequence);
      return false;
    });
    this.front = this.front.filter((sequence) => sequence.group !== group);
    this.queue = this.queue.slice(this.head).filter((sequence) => sequence.group !== group);
    this.head = 0;
  }
}
