// The assemble stage: each source document with its generations in, training documents out: the original
// for the real stream, and the synthetic document(s) that stitch, stretch or none arrange for the other.

import { shuffleWindowStage } from '../shuffle.js';
import { flattenArrays } from '../stream.js';
import type { DocGenerations, Megadoc, Stage } from '../types.js';
import { type AssembleStats, countDrop, type DocGroup, groupOf, newAssembleStats } from './group.js';
import { separateDocuments } from './none.js';
import { type OriginalPlacement, type Separator, stitch } from './stitch.js';
import { stretch } from './stretch.js';

export { type AssembleStats, newAssembleStats } from './group.js';
export type { OriginalPlacement, Separator } from './stitch.js';

export type AssembleMode = 'stitch' | 'stretch' | 'none';
export const ASSEMBLE_MODES: readonly AssembleMode[] = ['stitch', 'stretch', 'none'];

export interface AssembleOptions {
  mode: AssembleMode;
  /** Where the original goes in a stitched megadoc; `none` leaves it out (of `none`'s documents too). */
  original: OriginalPlacement;
  separator: Separator;
  /** Joins the parts with `separator: 'text'`. */
  join: string;
  thoughtOpen: string;
  thoughtClose: string;
  /** Source documents with fewer surviving generations make no synthetic document (counted). */
  minGenerations: number;
  /** With `none`: documents held to scatter each document's generations among the others'. */
  shuffleWindow: number;
  /** Seeds the scatter of `none`. */
  seed: number;
  stats?: AssembleStats;
}

function synthetic(group: DocGroup, options: AssembleOptions): Megadoc[] {
  const { id } = group.doc;
  switch (options.mode) {
    case 'stitch': {
      const parts = stitch(group, options);
      return parts.length > 0 ? [{ stream: 'synthetic', id, parts }] : [];
    }
    case 'stretch':
      return [{ stream: 'synthetic', id, parts: [stretch(group, options)] }];
    case 'none':
      return separateDocuments(group, options.original !== 'none').map((document) => ({
        stream: 'synthetic',
        id: `${id}#${document.part}`,
        parts: [document.text],
      }));
  }
}

/**
 * Per source document, in input order: the original as a real document, then its synthetic documents
 * (none when it is dropped). With `none` the synthetic documents are scattered by a seeded shuffle window.
 */
export function assembleStage(options: AssembleOptions): Stage<DocGenerations, Megadoc> {
  const stats = options.stats ?? newAssembleStats();
  const arrange = (done: DocGenerations): Megadoc[] => {
    const real: Megadoc = { stream: 'real', id: done.doc.id, parts: [done.doc.text] };
    const group = groupOf(done, options.minGenerations, stats);
    if (!group) return [real];
    const made = synthetic(group, options);
    if (made.length === 0) {
      countDrop(stats, 'nothing_to_stitch');
      return [real];
    }
    stats.kept += 1;
    stats.megadocs += made.length;
    return [real, ...made];
  };
  if (options.mode !== 'none') return (input) => input.map(arrange).through(flattenArrays<Megadoc>());
  const scatter = shuffleWindowStage<Megadoc>({
    window: options.shuffleWindow,
    seed: options.seed,
    salt: 'assemble-none',
    holds: (megadoc) => megadoc.stream === 'synthetic',
  });
  return (input) => input.map(arrange).through(flattenArrays<Megadoc>()).through(scatter);
}
