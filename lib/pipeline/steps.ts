// A command's chain as a named list of steps, each one stage (stream in, stream out), applied in order;
// the executor runs the list, and the run benchmark times it step by step by stopping after a named one.
import type { Stage } from '../types.js';

/** One named step of a command's chain. */
export interface Step<A = unknown, B = unknown> {
  readonly name: string;
  readonly stage: Stage<A, B>;
}

/** A step that makes any value: the chains are lists of steps whose types line up one after the other. */
// biome-ignore lint/suspicious/noExplicitAny: a list of steps holds stages of different item types.
export type AnyStep = Step<any, any>;

/** The stream after every step in `steps`, or after the one named `until` when it is given and found. */
export function throughSteps<T>(
  // biome-ignore lint/suspicious/noExplicitAny: the first step decides what the input holds.
  input: Highland.Stream<any>,
  steps: readonly AnyStep[],
  until?: string,
): Highland.Stream<T> {
  let stream = input as Highland.Stream<unknown>;
  for (const step of steps) {
    stream = stream.through(step.stage);
    if (step.name === until) break;
  }
  return stream as Highland.Stream<T>;
}
