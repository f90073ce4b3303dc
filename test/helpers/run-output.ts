// Shared by the `megadocs run` end-to-end tests: small real inputs, what the loopback LLM server must have
// answered for each document (recomputed from its deterministic rules), and the shards decoded back to text.
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { equalTokenSplits } from '../../lib/generate/input.js';
import { mainKeywords, postprocess } from '../../lib/generate/postprocess.js';
import { resolveRecipe } from '../../lib/generate/recipes/index.js';
import { parsePairs } from '../../lib/generate/recipes/maga.js';
import { requestSeed } from '../../lib/generate/seeds.js';
import { DEFAULT_TEMPLATES, fillSlots, type Slots } from '../../lib/generate/templates/index.js';
import { iterateMdsSamples } from '../../lib/sinks/mds-reader.js';
import type { Encoder } from '../../lib/tokenize/encoders.js';
import { SHARED_DATA } from './cli.js';
import { completionText, magaPairsAnswer } from './openai-server.js';

export interface SourceDoc {
  id: string;
  text: string;
}

/** The first `count` records of a real JSONL corpus, written to `dir/NAME`; returns the file and its docs. */
export async function realInput(
  dir: string,
  count: number,
  corpus = 'fineweb-300.jsonl',
  name = 'input.jsonl',
): Promise<{ file: string; docs: SourceDoc[] }> {
  const lines = (await readFile(join(SHARED_DATA, corpus), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .slice(0, count);
  const file = join(dir, name);
  await writeFile(file, `${lines.join('\n')}\n`);
  const docs = lines.map((line) => {
    const record = JSON.parse(line) as { id: string | number; text: string };
    return { id: String(record.id), text: record.text };
  });
  return { file, docs };
}

/** The prompt text the test server answers from: the last user message of the rendered template. */
function promptOf(template: string, slots: Slots): string {
  const messages = DEFAULT_TEMPLATES[template]!.messages;
  return fillSlots(messages.filter((message) => message.role === 'user').at(-1)!.content, slots);
}

/** The G rephrases (one request of n = G, style wiki) the server gives a document, in index order. */
export function expectedRephrases(doc: SourceDoc, generations: number, seed = 0): string[] {
  const requestSeedValue = requestSeed(seed, doc.id, 'rephrase', 'wiki:0');
  const prompt = promptOf('rephrase.wiki', { text: doc.text });
  return Array.from(
    { length: generations },
    (_v, choice) => completionText(prompt, requestSeedValue, choice, 1024).text,
  );
}

/** MAGA's rewrites that survive its cleaning, in pair order. */
export async function expectedMagaRewrites(doc: SourceDoc, generations: number, seed = 0): Promise<string[]> {
  const recipe = await resolveRecipe({ recipe: 'maga', generations, nPerRequest: 16 });
  const pairsSeed = requestSeed(seed, doc.id, 'maga', 'pairs:0');
  const pairs = parsePairs(
    JSON.stringify(magaPairsAnswer(promptOf('maga.pairs', { text: doc.text }), pairsSeed)),
  )!;
  const keywords = mainKeywords(doc.text);
  return pairs.slice(0, generations).flatMap((pair, index) => {
    const prompt = promptOf('maga.rewrite', { text: doc.text, genre: pair.genre, audience: pair.audience });
    const answer = completionText(
      prompt,
      requestSeed(seed, doc.id, 'maga', `rewrite:${index}`),
      0,
      2048,
    ).text;
    const kept = postprocess(answer, recipe.postprocess, undefined, keywords);
    return kept.text === undefined ? [] : [kept.text];
  });
}

/** The stretched document: the original with each split's rationale wrapped in the delimiters. */
export function expectedStretch(doc: SourceDoc, generations: number, encoder: Encoder, seed = 0): string {
  const offsets = equalTokenSplits(doc.text, generations, encoder);
  let previous = 0;
  let out = '';
  for (const [position, offset] of offsets.entries()) {
    const prompt = promptOf('stretch.rationale', {
      prefix: doc.text.slice(0, offset),
      suffix: doc.text.slice(offset),
    });
    const thought = completionText(
      prompt,
      requestSeed(seed, doc.id, 'stretch', `split:${position + 1}`),
      0,
      512,
    ).text;
    out += `${doc.text.slice(previous, offset)}<think>${thought}</think>`;
    previous = offset;
  }
  return out + doc.text.slice(previous);
}

/** Every sample of an MDS dataset, as token arrays, in storage order. */
export async function samplesOf(dir: string): Promise<Uint32Array[]> {
  const samples: Uint32Array[] = [];
  for await (const sample of iterateMdsSamples(dir))
    samples.push(Uint32Array.from(sample.tokens as ArrayLike<number>));
  return samples;
}

/** The dataset's token stream cut at each EOS and decoded: the documents (parts) in the order packed. */
export async function decodedParts(dir: string, encoder: Encoder): Promise<string[]> {
  const parts: string[] = [];
  let current: number[] = [];
  for (const sample of await samplesOf(dir)) {
    for (const token of sample) {
      if (token === encoder.eosId) {
        parts.push(encoder.decode(current));
        current = [];
      } else {
        current.push(token);
      }
    }
  }
  if (current.length > 0) parts.push(encoder.decode(current));
  return parts;
}

export function sampleDigest(tokens: Uint32Array): string {
  return createHash('sha256')
    .update(Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength))
    .digest('hex');
}

/** sha256 of every file of a dataset (index and shards; not megadocs.json or state/), by relative path. */
export async function datasetFiles(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const name = relative(dir, path);
    if (name === 'megadocs.json' || name.startsWith('state')) continue;
    files[name] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return files;
}
