// The failure budget of a generation run (`--max-failures F`): counts the documents that lost generations to
// requests that failed for good and, once the stream ends, fails it with IncompleteRunError when over the budget.
import { IncompleteRunError } from '../errors.js';
import { highland as _ } from '../stream.js';
import type { DocGenerations, Stage } from '../types.js';
import type { GenerateStats } from './stats.js';

export interface FailureBudgetOptions {
  /** The share of documents (0..1) that may lose generations to failed requests and the run still complete. */
  maxFailures: number;
  /** `failedDocuments` is counted here; its failures by cause and their examples word the error. */
  stats: GenerateStats;
}

/** Longest example message quoted per cause (a server may answer with a page of HTML). */
const EXAMPLE_CHARS = 300;

function percent(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1)}%`;
}

/** The error of a run over its budget: how many documents failed, the failed requests by cause with one example each. */
function tooManyFailures(
  failedDocuments: number,
  documents: number,
  maxFailures: number,
  stats: Pick<GenerateStats, 'failures' | 'failureExamples'>,
): IncompleteRunError {
  const causes = Object.entries(stats.failures)
    .filter(([, count]) => count > 0)
    .sort(([, a], [, b]) => b - a)
    .map(([cause, count]) => {
      const example = stats.failureExamples[cause] ?? '';
      const quoted = example.length > EXAMPLE_CHARS ? `${example.slice(0, EXAMPLE_CHARS - 3)}...` : example;
      return `  ${cause}: ${count} request${count === 1 ? '' : 's'}${quoted ? `, e.g. ${quoted}` : ''}`;
    });
  return new IncompleteRunError(
    `${failedDocuments} of ${documents} documents (${percent(failedDocuments, documents)}) lost generations ` +
      `to requests that failed for good, more than --max-failures ${maxFailures} (${percent(maxFailures, 1)}) ` +
      `allows: the run is incomplete and wrote no dataset index.\nFailed requests by cause:\n${causes.join('\n')}\n` +
      'Fix the cause and run the same command again: it sends only the failed requests (the journal keeps every ' +
      'answer). Or rerun it with a higher --max-failures to accept these failures',
  );
}

/**
 * Passes each document's generations on unchanged, counting those with failed requests; at the end of the stream,
 * errors with IncompleteRunError when their share of the documents is above `maxFailures`, before the end goes on.
 */
export function failureBudgetStage(options: FailureBudgetOptions): Stage<DocGenerations, DocGenerations> {
  const { maxFailures, stats } = options;
  return (input) => {
    // Per stream: the share is of the documents this stream carried.
    let documents = 0;
    let failedDocuments = 0;
    return input.consume<DocGenerations>((error, item, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      if (_.isNil(item)) {
        if (failedDocuments > maxFailures * documents) {
          push(tooManyFailures(failedDocuments, documents, maxFailures, stats));
        }
        push(null, _.nil);
        return;
      }
      const done = item as DocGenerations;
      documents += 1;
      if (done.failed > 0) {
        failedDocuments += 1;
        stats.failedDocuments += 1;
      }
      push(null, done);
      next();
    });
  };
}
