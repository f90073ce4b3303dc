// Stitching (METHODS.md §2): one megadoc per source document, its generations then the original (or the
// original first, or none), as separate parts that stay contiguous, or as one text joined by a string.
import type { DocGroup } from './group.js';

export type OriginalPlacement = 'back' | 'front' | 'none';
export type Separator = 'eos' | 'text';

export interface StitchOptions {
  original: OriginalPlacement;
  /** `eos`: each part its own document ending with EOS; `text`: one document, parts joined by `join`. */
  separator: Separator;
  join: string;
}

/** The parts of the megadoc, in order; empty when there is nothing to stitch. */
export function stitch(group: DocGroup, options: StitchOptions): string[] {
  const generations = group.generations.map((generation) => generation.text);
  const original = group.doc.text;
  const parts =
    options.original === 'back'
      ? [...generations, original]
      : options.original === 'front'
        ? [original, ...generations]
        : generations;
  if (parts.length === 0) return [];
  return options.separator === 'eos' ? parts : [parts.join(options.join)];
}
