// A megadocs transform at the `generations` point: drops each generation that copies too much of its
// source document (the share of its word 6-grams found verbatim in the source), so a megadoc holds rephrases.
// Use it with `megadocs run ... --transform examples/transforms/drop-copies.mjs` (or `generate`).

/** A generation whose share of copied 6-grams is above this is dropped. */
const MAX_COPIED = 0.5;
const N = 6;

function shingles(text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const grams = new Set();
  for (let i = 0; i + N <= words.length; i += 1) grams.add(words.slice(i, i + N).join(' '));
  return grams;
}

/** The share of the generation's 6-grams that appear in the source (0 for a generation under 6 words). */
export function copiedShare(generation, source) {
  const own = shingles(generation);
  if (own.size === 0) return 0;
  let copied = 0;
  for (const gram of own) if (source.has(gram)) copied += 1;
  return copied / own.size;
}

export const generations = [
  {
    name: 'drop-copies',
    version: '1',
    // A factory: called once per run with the run's config; the stage it returns gets one document's
    // generations at a time (a highland stream of { doc, generations, failed, filtered }).
    create: () => (stream) =>
      stream.map((done) => {
        const source = shingles(done.doc.text);
        const kept = done.generations.filter(
          (generation) => copiedShare(generation.text, source) <= MAX_COPIED,
        );
        return {
          ...done,
          generations: kept,
          filtered: done.filtered + done.generations.length - kept.length,
        };
      }),
  },
];
