// Recipes without a server: templates and their slots, overrides from files, custom recipe files,
// post-processing filters, MAGA's JSON parsing, and the token-exact input cut and stretch split points.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cutAtLineBoundary, equalTokenSplits } from '../lib/generate/input.js';
import { keywordOverlap, mainKeywords, NO_POSTPROCESS, postprocess } from '../lib/generate/postprocess.js';
import { loadCustomRecipe } from '../lib/generate/recipes/custom.js';
import { resolveRecipe } from '../lib/generate/recipes/index.js';
import { parsePairs } from '../lib/generate/recipes/maga.js';
import { indexesByStyle } from '../lib/generate/recipes/rephrase.js';
import {
  DEFAULT_TEMPLATES,
  fillSlots,
  loadTemplates,
  renderPrompt,
  slotsUsed,
} from '../lib/generate/templates/index.js';
import { type Encoder, loadEncoder } from '../lib/tokenize/encoders.js';
import { REPO_ROOT, SHARED_DATA, tempDir } from './helpers/cli.js';

let encoder: Encoder;
let warAndPeace: string;

beforeAll(async () => {
  encoder = await loadEncoder('o200k_base');
  warAndPeace = await readFile(join(SHARED_DATA, 'war-and-peace.txt'), 'utf8');
});

describe('templates', () => {
  it('fills the five slots in one pass and leaves other braces alone', () => {
    const filled = fillSlots('A {text} B {genre}/{audience} {"json": 1} {unknown}', {
      text: 'has {genre} inside',
      genre: 'letter',
      audience: 'kids',
    });
    expect(filled).toBe('A has {genre} inside B letter/kids {"json": 1} {unknown}');
  });

  it('renders chat messages, or plain text for base models (the template prompt, else the messages)', () => {
    const wiki = DEFAULT_TEMPLATES['rephrase.wiki']!;
    const chat = renderPrompt(wiki, { text: 'Moscow, 1812.' }, 'chat');
    expect('messages' in chat && chat.messages.map((message) => message.role)).toEqual(['system', 'user']);
    expect(renderPrompt(wiki, { text: 'Moscow, 1812.' }, 'text')).toEqual({
      prompt: 'Document:\nMoscow, 1812.\n\nThe same content, written as an encyclopedia article:\n',
    });
    const bare = {
      messages: [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: '{text}' },
      ],
    };
    expect(renderPrompt(bare, { text: 'Moscow.' }, 'text')).toEqual({ prompt: 'Be brief.\n\nMoscow.' });
  });

  it('has a template for every rephrase style, both MAGA stages and stretch, each using its slots', () => {
    for (const style of ['wiki', 'qa', 'simple', 'terse', 'distill', 'knowledge', 'facts']) {
      expect(slotsUsed(DEFAULT_TEMPLATES[`rephrase.${style}`]!)).toEqual(new Set(['text']));
    }
    expect(slotsUsed(DEFAULT_TEMPLATES['maga.pairs']!)).toEqual(new Set(['text']));
    expect(slotsUsed(DEFAULT_TEMPLATES['maga.rewrite']!)).toEqual(new Set(['text', 'genre', 'audience']));
    expect(slotsUsed(DEFAULT_TEMPLATES['stretch.rationale']!)).toEqual(new Set(['prefix', 'suffix']));
  });

  it('overrides templates from a file, and refuses unknown names with the list of known ones', async () => {
    const dir = await tempDir();
    const path = join(dir, 'templates.json');
    await writeFile(path, JSON.stringify({ 'rephrase.wiki': 'Paraphrase: {text}' }));
    const templates = await loadTemplates(path);
    expect(templates['rephrase.wiki']).toEqual({
      messages: [{ role: 'user', content: 'Paraphrase: {text}' }],
    });
    expect(templates['rephrase.qa']).toBe(DEFAULT_TEMPLATES['rephrase.qa']);
    await writeFile(path, JSON.stringify({ 'rephrase.wikipedia': 'x' }));
    await expect(loadTemplates(path)).rejects.toThrow(/unknown template "rephrase.wikipedia".*rephrase.wiki/);
    await writeFile(path, JSON.stringify({ 'rephrase.wiki': { messages: [{ role: 'bot', content: 'x' }] } }));
    await expect(loadTemplates(path)).rejects.toThrow(/templates.json: rephrase.wiki/);
  });
});

describe('recipes', () => {
  it('spreads G generations round-robin over the styles', () => {
    expect([...indexesByStyle(['wiki', 'qa', 'facts'], 7)]).toEqual([
      ['wiki', [0, 3, 6]],
      ['qa', [1, 4]],
      ['facts', [2, 5]],
    ]);
  });

  it('refuses unknown recipes and styles, and MAGA beyond 5 pairs', async () => {
    await expect(resolveRecipe({ recipe: 'paraphrase', nPerRequest: 4 })).rejects.toThrow(
      /unknown recipe.*\.json/,
    );
    await expect(resolveRecipe({ recipe: 'rephrase', styles: ['poem'], nPerRequest: 4 })).rejects.toThrow(
      /unknown style "poem"/,
    );
    await expect(resolveRecipe({ recipe: 'maga', generations: 6, nPerRequest: 4 })).rejects.toThrow(/1\.\.5/);
    await expect(resolveRecipe({ recipe: 'stretch', styles: ['qa'], nPerRequest: 4 })).rejects.toThrow(
      /--styles applies to the rephrase recipe/,
    );
  });

  it('loads the example custom recipe: a rephrase with its own sampling and token bounds', async () => {
    const path = resolve(REPO_ROOT, 'examples/recipe-custom.json');
    const custom = await loadCustomRecipe(path);
    expect(custom).toMatchObject({
      name: 'lecture-notes',
      kind: 'rephrase',
      generations: 2,
      sampling: { temperature: 0.7, topP: 0.9, maxTokens: 1024 },
      postprocess: { stripLeadingBoilerplate: true, minTokens: 50, maxTokens: 2048 },
    });
    const recipe = await resolveRecipe({ recipe: path, nPerRequest: 8, sampling: { temperature: 0.2 } });
    expect(recipe.name).toBe('lecture-notes');
    expect(recipe.generations).toBe(2);
  });

  it('infers stretch and MAGA custom recipes from their slots and checks them', async () => {
    const dir = await tempDir();
    const write = async (name: string, value: unknown) => {
      const path = join(dir, name);
      await writeFile(path, JSON.stringify(value));
      return path;
    };
    const user = (content: string) => ({ messages: [{ role: 'user', content }] });
    expect(
      (await loadCustomRecipe(await write('think.json', user('Before: {prefix} After: {suffix}')))).kind,
    ).toBe('stretch');
    expect(
      (await loadCustomRecipe(await write('g.json', user('{text} as {genre} for {audience}')))).kind,
    ).toBe('maga');
    await expect(loadCustomRecipe(await write('bad.json', user('no slot at all')))).rejects.toThrow(
      /a rephrase recipe must use \{text\}/,
    );
    await expect(
      loadCustomRecipe(await write('typo.json', { ...user('{text}'), temprature: 1 })),
    ).rejects.toThrow(/typo.json/);
  });
});

describe('post-processing', () => {
  it('strips a leading boilerplate line but not a real first sentence', () => {
    const options = { ...NO_POSTPROCESS, stripLeadingBoilerplate: true };
    expect(postprocess('Here is a paraphrased version:\n\nThe city grew.', options).text).toBe(
      'The city grew.',
    );
    expect(postprocess('Sure! Here is the rewritten text:\nThe city grew.', options).text).toBe(
      'The city grew.',
    );
    expect(postprocess('Sure enough, the city grew.\nThen it shrank.', options).text).toBe(
      'Sure enough, the city grew.\nThen it shrank.',
    );
    expect(postprocess('  \n', options).dropped).toBe('empty');
  });

  it("applies MAGA's cleaning: boilerplate lines and outputs that share no keywords with the source", () => {
    const source = warAndPeace.slice(200_000, 204_000);
    const keywords = mainKeywords(source);
    expect(keywords.length).toBe(20);
    const options = { ...NO_POSTPROCESS, dropBoilerplateLines: true, minKeywordOverlap: 0.1 };
    const faithful = source.slice(0, 1_500);
    expect(keywordOverlap(keywords, faithful)).toBeGreaterThan(0.3);
    expect(postprocess(faithful, options, undefined, keywords).text).toBe(faithful.trim());
    expect(
      postprocess(`${faithful}\nNote: this rewrite is simplified.`, options, undefined, keywords).dropped,
    ).toBe('boilerplate');
    const unrelated = 'Quarterly revenue of the semiconductor division rose, driven by datacenter demand.';
    expect(postprocess(unrelated, options, undefined, keywords).dropped).toBe('off_topic');
  });

  it('drops outputs outside the token bounds, counting real tokens', () => {
    const options = { ...NO_POSTPROCESS, minTokens: 50, maxTokens: 200 };
    const count = (text: string) => encoder.encode(text).length;
    const paragraph = warAndPeace.slice(100_000, 103_000);
    expect(postprocess('Too short to keep.', options, count).dropped).toBe('too_short');
    expect(postprocess(paragraph, options, count).dropped).toBe('too_long');
    const fits = paragraph.slice(0, 600);
    expect(count(fits.trim())).toBeGreaterThanOrEqual(50);
    expect(postprocess(fits, options, count).text).toBe(fits.trim());
  });

  it("reads MAGA's pairs from JSON (fenced or not) and rejects anything incomplete", () => {
    const pairs = Object.fromEntries(
      [1, 2, 3, 4, 5].flatMap((i) => [
        [`genre_${i}`, `genre ${i}`],
        [`audience_${i}`, `audience ${i}`],
      ]),
    );
    expect(parsePairs(JSON.stringify(pairs))?.[4]).toEqual({ genre: 'genre 5', audience: 'audience 5' });
    expect(parsePairs(`\`\`\`json\n${JSON.stringify(pairs)}\n\`\`\``)).toHaveLength(5);
    expect(parsePairs(JSON.stringify({ ...pairs, audience_3: '' }))).toBeUndefined();
    const { genre_5: _dropped, ...four } = pairs;
    expect(parsePairs(JSON.stringify(four))).toBeUndefined();
    expect(parsePairs('Sure! Here are five ideas.')).toBeUndefined();
  });
});

describe('token-exact text cuts', () => {
  it('cuts an input to the token budget at the last line break that fits', () => {
    const text = warAndPeace.slice(0, 20_000);
    const { text: cut, cut: wasCut } = cutAtLineBoundary(text, 1_000, encoder);
    expect(wasCut).toBe(true);
    expect(text.startsWith(cut)).toBe(true);
    expect(text[cut.length]).toBe('\n');
    expect(encoder.encode(cut).length).toBeLessThanOrEqual(1_000);
    // The next line would not have fitted.
    const nextBreak = text.indexOf('\n', cut.length + 1);
    expect(encoder.encode(text.slice(0, nextBreak)).length).toBeGreaterThan(1_000);
    expect(cutAtLineBoundary(text, 100_000, encoder)).toEqual({ text, cut: false });
  });

  it('places stretch split points at equal token lengths, never inside a character', () => {
    const text = `${warAndPeace.slice(300_000, 306_000)} — «Наташа» 👩‍👧 é`;
    const offsets = equalTokenSplits(text, 4, encoder);
    expect(offsets).toHaveLength(4);
    const bounds = [0, ...offsets, text.length];
    const pieces = bounds.slice(1).map((end, k) => text.slice(bounds[k], end));
    expect(pieces.join('')).toBe(text);
    const lengths = pieces.map((piece) => encoder.encode(piece).length);
    const total = encoder.encode(text).length;
    for (const length of lengths) expect(Math.abs(length - total / 5)).toBeLessThanOrEqual(3);
    expect(equalTokenSplits('one two', 8, encoder).length).toBe(1);
    // Emoji and rare CJK take several byte-level tokens per character: points move to the next whole one.
    const hard = '👩‍👧‍👦🦜鬱龘'.repeat(40);
    const hardOffsets = equalTokenSplits(hard, 7, encoder);
    expect(hardOffsets).toHaveLength(7);
    for (const offset of hardOffsets) {
      const code = hard.charCodeAt(offset);
      expect(code >= 0xdc00 && code <= 0xdfff).toBe(false);
      expect(encoder.decode(encoder.encode(hard.slice(0, offset)))).toBe(hard.slice(0, offset));
    }
  });
});
