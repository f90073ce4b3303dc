// What a command says when its --out already holds this very run, complete: a requeued job exits 0 at once
// and changes nothing (the library returns the recorded summary with `alreadyComplete: true`).
import type { ProgressDisplay } from './progress.js';

/** Prints the "already complete" line (and, with --json, the recorded summary); false for a run that did work. */
export function reportAlreadyComplete(
  display: ProgressDisplay,
  command: string,
  out: string,
  summary: object,
  json: boolean,
  redo = 'Pass --overwrite to run it again',
): boolean {
  if (!('alreadyComplete' in summary && summary.alreadyComplete)) return false;
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  // Said even under --quiet: the log of a requeued job must show why it did nothing.
  display.stop();
  process.stderr.write(
    `megadocs ${command}: ${out} is already complete (the same command and options): nothing to do${redo ? `. ${redo}` : ''}\n`,
  );
  return true;
}
