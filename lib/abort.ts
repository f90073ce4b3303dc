// Turning an AbortSignal (Ctrl-C in the CLI) into a rejection that a run can race its work against.
// The run then marks itself interrupted in megadocs.json; rerunning the same command continues it.
import { MegadocsError } from './errors.js';

/** Rejects with an INTERRUPTED error when `signal` aborts; never settles without a signal. */
export function rejectOnAbort(
  signal: AbortSignal | undefined,
  hint = 'Run the same command again to continue',
): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal?.addEventListener(
      'abort',
      () => reject(new MegadocsError('INTERRUPTED', 'interrupted', { hint })),
      {
        once: true,
      },
    );
  });
}
