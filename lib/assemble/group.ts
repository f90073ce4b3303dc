// One source document's generations as a group ready to arrange: checked to be its own, put in arrangement
// order, and kept or dropped per --min-generations with the cause counted.

import { MegadocsError } from '../errors.js';
import type { Doc, DocGenerations, Generation } from '../types.js';

/**
 * The generate stage collects each document's generations as their requests complete (in any order) and
 * settles the document once all of them are done, failed or filtered, within its bounded window; so a
 * group arrives whole, and memory stays bounded by that window, not by the dataset.
 */
export interface DocGroup {
  doc: Doc;
  /** Surviving generations: by split point for stretch rationales, otherwise by generation index. */
  generations: Generation[];
}

export interface AssembleStats {
  /** Source documents in. */
  documents: number;
  /** Generations that reached assembly (after the generate stage's own filters). */
  generations: number;
  /** Source documents that made synthetic output. */
  kept: number;
  /** Synthetic training documents out (one per kept source with stitch/stretch, one per part with none). */
  megadocs: number;
  /** Source documents with no synthetic output, by cause. */
  dropped: Record<string, number>;
}

export function newAssembleStats(): AssembleStats {
  return { documents: 0, generations: 0, kept: 0, megadocs: 0, dropped: {} };
}

function orderKey(generation: Generation): number {
  return generation.split ?? generation.index;
}

/** Counts a source document that makes no synthetic output. */
export function countDrop(stats: AssembleStats, cause: string): void {
  stats.dropped[cause] = (stats.dropped[cause] ?? 0) + 1;
}

/** Why a document fell short: the stage that skipped it, failed requests, filters, or too few asked for. */
function dropCause(done: DocGenerations): string {
  if (done.skipped) return done.skipped;
  if (done.failed > 0) return 'failed_requests';
  if (done.filtered > 0) return 'filtered';
  return 'too_few_generations';
}

/** The document's group, or undefined when fewer than `minGenerations` generations survived (counted). */
export function groupOf(
  done: DocGenerations,
  minGenerations: number,
  stats: AssembleStats,
): DocGroup | undefined {
  stats.documents += 1;
  stats.generations += done.generations.length;
  for (const generation of done.generations) {
    if (generation.docId !== done.doc.id) {
      throw new MegadocsError(
        'CORRUPT',
        `a generation of document ${generation.docId} arrived with document ${done.doc.id}`,
        { where: `document ${done.doc.id}`, hint: 'This is a bug in the generate stage: please report it' },
      );
    }
  }
  if (done.generations.length < minGenerations) {
    countDrop(stats, dropCause(done));
    return undefined;
  }
  const generations = [...done.generations].sort((a, b) => orderKey(a) - orderKey(b));
  return { doc: done.doc, generations };
}
