// No assembly (the paper's "simple rephrasing" baseline): every generation its own document, plus the
// original; the assemble stage then scatters them among other documents' with a seeded shuffle window.
import type { DocGroup } from './group.js';

export interface SeparateDocument {
  /** `index` of the generation, or `original`. */
  part: string;
  text: string;
}

/** The group's generations as separate documents, then the original unless `withOriginal` is false. */
export function separateDocuments(group: DocGroup, withOriginal: boolean): SeparateDocument[] {
  const documents = group.generations.map((generation) => ({
    part: String(generation.index),
    text: generation.text,
  }));
  if (withOriginal) documents.push({ part: 'original', text: group.doc.text });
  return documents;
}
