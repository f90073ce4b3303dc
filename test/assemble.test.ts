// The assemble stage on real documents: stitch (original back/front/none, EOS or text separator), stretch
// (rationales between token-exact pieces), none (scattered separate documents), and --min-generations.
import path from 'node:path';
import _ from 'highland';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AssembleOptions, assembleStage, newAssembleStats } from '../lib/assemble/index.js';
import { equalTokenSplits } from '../lib/generate/input.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';
import type { Doc, DocGenerations, Generation, Megadoc } from '../lib/types.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data');

let docs: Doc[] = [];
let encoder: Encoder;
beforeAll(async () => {
  const shards = await expandInputs([path.join(DATA, 'fineweb-300.jsonl')]);
  docs = (await readDocs(shards).take(40).collect().toPromise(Promise)) as Doc[];
  encoder = await loadEncoder('o200k_base');
});

const OPTIONS: AssembleOptions = {
  mode: 'stitch',
  original: 'back',
  separator: 'eos',
  join: '\n\n',
  thoughtOpen: '<think>',
  thoughtClose: '</think>',
  minGenerations: 1,
  shuffleWindow: 8,
  seed: 0,
};

function generation(doc: Doc, index: number, extra: Partial<Generation> = {}): Generation {
  return {
    docId: doc.id,
    recipe: 'rephrase',
    index,
    text: `rewrite ${index} of ${doc.id}: ${doc.text.slice(index * 50, index * 50 + 120)}`,
    finishReason: 'stop',
    model: 'test-model',
    seed: index,
    ...extra,
  };
}

/** A document with G generations listed in a scrambled order (as a recipe may return them). */
function done(doc: Doc, count: number, more: Partial<DocGenerations> = {}): DocGenerations {
  const generations = Array.from({ length: count }, (_v, i) => generation(doc, i));
  return { doc, generations: [...generations.reverse()], failed: 0, filtered: 0, ...more };
}

async function assemble(input: DocGenerations[], options: Partial<AssembleOptions> = {}): Promise<Megadoc[]> {
  return (await _(input)
    .through(assembleStage({ ...OPTIONS, ...options }))
    .collect()
    .toPromise(Promise)) as Megadoc[];
}

describe('stitch', () => {
  it('puts each document after its own generations, in index order, as separate parts', async () => {
    const input = docs.slice(0, 5).map((doc, i) => done(doc, 2 + i));
    const out = await assemble(input);
    expect(out).toHaveLength(10);
    for (const [i, doc] of docs.slice(0, 5).entries()) {
      const [real, megadoc] = [out[2 * i]!, out[2 * i + 1]!];
      expect(real).toEqual({ stream: 'real', id: doc.id, parts: [doc.text] });
      expect(megadoc.stream).toBe('synthetic');
      expect(megadoc.id).toBe(doc.id);
      const expected = Array.from({ length: 2 + i }, (_v, k) => generation(doc, k).text);
      expect(megadoc.parts).toEqual([...expected, doc.text]);
    }
  });

  it('puts the original first with "front", leaves it out with "none", and joins with the text separator', async () => {
    const doc = docs[7]!;
    const texts = [0, 1, 2].map((k) => generation(doc, k).text);
    expect((await assemble([done(doc, 3)], { original: 'front' }))[1]!.parts).toEqual([doc.text, ...texts]);
    expect((await assemble([done(doc, 3)], { original: 'none' }))[1]!.parts).toEqual(texts);
    const joined = await assemble([done(doc, 3)], { separator: 'text', join: '\n\n' });
    expect(joined[1]!.parts).toEqual([[...texts, doc.text].join('\n\n')]);
  });

  it('drops a document with fewer than --min-generations survivors, by cause, and keeps its real copy', async () => {
    const stats = newAssembleStats();
    const input = [
      done(docs[0]!, 4),
      done(docs[1]!, 2, { failed: 2 }),
      done(docs[2]!, 1, { filtered: 3 }),
      done(docs[3]!, 0, { skipped: 'invalid_pairs_json' }),
      done(docs[4]!, 3),
    ];
    const out = await assemble(input, { minGenerations: 3, stats });
    expect(out.filter((m) => m.stream === 'real').map((m) => m.id)).toEqual(
      docs.slice(0, 5).map((d) => d.id),
    );
    expect(out.filter((m) => m.stream === 'synthetic').map((m) => m.id)).toEqual([docs[0]!.id, docs[4]!.id]);
    expect(stats).toEqual({
      documents: 5,
      generations: 10,
      kept: 2,
      megadocs: 2,
      dropped: { failed_requests: 1, filtered: 1, invalid_pairs_json: 1 },
    });
  });

  it('makes nothing from a document with no generations and no original, and says so', async () => {
    const stats = newAssembleStats();
    const out = await assemble([done(docs[0]!, 0)], { minGenerations: 0, original: 'none', stats });
    expect(out.map((m) => m.stream)).toEqual(['real']);
    expect(stats.dropped).toEqual({ nothing_to_stitch: 1 });
  });
});

describe('stretch', () => {
  function rationales(doc: Doc, splits: number): DocGenerations {
    const offsets = equalTokenSplits(doc.text, splits, encoder);
    const generations = offsets.map((offset, position) =>
      generation(doc, position, {
        recipe: 'stretch',
        style: 'rationale',
        split: position + 1,
        splitOffset: offset,
        text: `thought ${position + 1} about ${doc.id}`,
      }),
    );
    return { doc, generations: generations.reverse(), failed: 0, filtered: 0 };
  }

  it('interleaves token-exact pieces with wrapped rationales in split order; without them it is the original', async () => {
    const input = docs.slice(10, 20).map((doc) => rationales(doc, 4));
    const out = await assemble(input, { mode: 'stretch', thoughtOpen: '<think>', thoughtClose: '</think>' });
    for (const [i, doc] of docs.slice(10, 20).entries()) {
      const megadoc = out[2 * i + 1]!;
      expect(megadoc.parts).toHaveLength(1);
      const text = megadoc.parts[0]!;
      const thoughts = [...text.matchAll(/<think>(.*?)<\/think>/g)].map((match) => match[1]);
      expect(thoughts).toEqual([1, 2, 3, 4].map((k) => `thought ${k} about ${doc.id}`));
      expect(text.replace(/<think>.*?<\/think>/g, '')).toBe(doc.text);
      const offsets = equalTokenSplits(doc.text, 4, encoder);
      expect(text.indexOf('<think>')).toBe(offsets[0]);
    }
  });

  it('leaves a split unmarked when its rationale failed, with custom delimiters', async () => {
    const doc = docs[11]!;
    const group = rationales(doc, 3);
    group.generations = group.generations.filter((g) => g.split !== 2);
    const [, megadoc] = await assemble([group], {
      mode: 'stretch',
      thoughtOpen: '\n[[',
      thoughtClose: ']]\n',
    });
    const text = megadoc!.parts[0]!;
    expect(text.match(/\n\[\[/g)).toHaveLength(2);
    expect(text.replace(/\n\[\[.*?\]\]\n/g, '')).toBe(doc.text);
  });

  it('refuses generations that carry no split offset, naming the document', async () => {
    await expect(assemble([done(docs[0]!, 2)], { mode: 'stretch' })).rejects.toThrow(
      new RegExp(`document ${docs[0]!.id}: generation \\d \\(recipe rephrase\\) has no split offset`),
    );
  });
});

describe('none', () => {
  it('makes each generation and the original its own document, scattered among other documents', async () => {
    const input = docs.slice(0, 30).map((doc) => done(doc, 4));
    const out = await assemble(input, { mode: 'none', shuffleWindow: 32, seed: 1 });
    const real = out.filter((m) => m.stream === 'real');
    const synthetic = out.filter((m) => m.stream === 'synthetic');
    expect(real.map((m) => m.id)).toEqual(docs.slice(0, 30).map((d) => d.id));
    expect(synthetic).toHaveLength(30 * 5);
    const expected = docs.slice(0, 30).flatMap((doc) => [
      ...[0, 1, 2, 3].map((k) => ({
        stream: 'synthetic',
        id: `${doc.id}#${k}`,
        parts: [generation(doc, k).text],
      })),
      { stream: 'synthetic', id: `${doc.id}#original`, parts: [doc.text] },
    ]);
    const byId = (a: Megadoc, b: Megadoc) => a.id.localeCompare(b.id);
    expect([...synthetic].sort(byId)).toEqual([...expected].sort(byId));
    // Scattered: neighbours in the output mostly come from different source documents.
    const source = (m: Megadoc) => m.id.split('#')[0];
    const sameNeighbour = synthetic.slice(1).filter((m, i) => source(m) === source(synthetic[i]!)).length;
    expect(sameNeighbour).toBeLessThan(20);
    const again = await assemble(input, { mode: 'none', shuffleWindow: 32, seed: 1 });
    expect(again.map((m) => m.id)).toEqual(out.map((m) => m.id));
    const reseeded = await assemble(input, { mode: 'none', shuffleWindow: 32, seed: 2 });
    expect(reseeded.map((m) => m.id)).not.toEqual(out.map((m) => m.id));
  });

  it('leaves the originals out with --original none', async () => {
    const out = await assemble([done(docs[0]!, 3)], { mode: 'none', original: 'none' });
    expect(
      out
        .filter((m) => m.stream === 'synthetic')
        .map((m) => m.id)
        .sort(),
    ).toEqual([0, 1, 2].map((k) => `${docs[0]!.id}#${k}`));
  });
});
