// Ctrl-C handling: the first SIGINT/SIGTERM aborts the run (which marks itself interrupted, writes no index),
// then the process exits with 130; a second signal exits at once.
import { MegadocsError } from '../lib/errors.js';

export async function runWithInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } catch (error) {
    if (error instanceof MegadocsError && error.code === 'INTERRUPTED') {
      process.stderr.write('megadocs: interrupted; run the same command again to continue\n');
      process.exit(130);
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
