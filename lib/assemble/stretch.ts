// Stretching (METHODS.md §2): the original cut at the rationales' split points, each rationale wrapped in
// the thought delimiters and put back between the two pieces it links; dropping the thoughts gives the original.
import { MegadocsError } from '../errors.js';
import type { DocGroup } from './group.js';

export interface StretchOptions {
  thoughtOpen: string;
  thoughtClose: string;
}

/** piece0 + open + thought1 + close + piece1 + ... ; a split whose rationale did not survive is not marked. */
export function stretch(group: DocGroup, options: StretchOptions): string {
  const { doc } = group;
  const pieces: string[] = [];
  let previous = 0;
  for (const generation of group.generations) {
    const offset = generation.splitOffset;
    if (offset === undefined || !Number.isInteger(offset) || offset < previous || offset > doc.text.length) {
      throw new MegadocsError(
        'BAD_INPUT',
        `generation ${generation.index} (recipe ${generation.recipe}) has ${
          offset === undefined ? 'no split offset' : `split offset ${offset}, out of order or past the text`
        }`,
        {
          where: `document ${doc.id}`,
          hint: '--assemble stretch needs the rationales of a stretch recipe; use --assemble stitch or none for other recipes',
        },
      );
    }
    pieces.push(doc.text.slice(previous, offset), options.thoughtOpen, generation.text, options.thoughtClose);
    previous = offset;
  }
  pieces.push(doc.text.slice(previous));
  return pieces.join('');
}
