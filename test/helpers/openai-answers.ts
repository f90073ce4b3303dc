// The deterministic answers of the OpenAI-compatible test server: text drawn from the prompt with a seeded
// generator (marker `s<seed>c<choice>` first), and MAGA's genre/audience pairs for JSON mode.

/** FNV-1a over UTF-16 units: cheap enough that the server is not what a benchmark measures. */
export function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** mulberry32: a small seeded generator, enough for test answers. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13) || code === 160;
}

/** Whitespace-separated words in `text`, counted without splitting it. */
export function countWords(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i += 1) {
    const space = isSpace(text.charCodeAt(i));
    if (!space && !inWord) words += 1;
    inWord = !space;
  }
  return words;
}

/** The word around position `at` (or the next one after whitespace); undefined past the last word. */
function wordAt(text: string, at: number): string | undefined {
  let start = at;
  while (start < text.length && isSpace(text.charCodeAt(start))) start += 1;
  if (start >= text.length) return undefined;
  while (start > 0 && !isSpace(text.charCodeAt(start - 1))) start -= 1;
  let end = start;
  while (end < text.length && !isSpace(text.charCodeAt(end))) end += 1;
  return text.slice(start, end);
}

/**
 * The deterministic answer to a prompt: marker `s<seed>c<choice>`, then 39..98 words of the prompt picked
 * at seeded positions (long words a little more often), cut to `maxTokens` words (finish_reason length).
 */
export function completionText(
  promptText: string,
  seed: number,
  choice: number,
  maxTokens?: number,
): { text: string; finishReason: 'stop' | 'length'; tokens: number } {
  const next = random(Math.imul(hash32(promptText) ^ seed, 0x9e3779b1) ^ Math.imul(choice + 1, 0x85ebca6b));
  const natural = 40 + Math.floor(next() * 60);
  const count = maxTokens === undefined ? natural : Math.min(natural, Math.max(1, maxTokens));
  const words = [`s${seed}c${choice}`];
  for (let i = 1; i < count; i += 1)
    words.push(wordAt(promptText, Math.floor(next() * promptText.length)) ?? 'word');
  return { text: words.join(' '), finishReason: count < natural ? 'length' : 'stop', tokens: count };
}

const GENRES = [
  'textbook section',
  'news feature',
  'personal letter',
  'lecture transcript',
  'forum answer',
  'radio script',
];
const AUDIENCES = [
  'curious teenager',
  'retired engineer',
  'busy nurse',
  'skeptical voter',
  'bored student',
  'hostile critic',
];

/** The JSON-mode answer: genre_1..genre_5 and audience_1..audience_5, chosen by the prompt and seed. */
export function magaPairsAnswer(promptText: string, seed: number): Record<string, string> {
  const next = random(hash32(`pairs\u0000${promptText}\u0000${seed}`));
  const answer: Record<string, string> = {};
  for (let i = 1; i <= 5; i += 1) {
    answer[`genre_${i}`] = `${GENRES[Math.floor(next() * GENRES.length)]} #${i}: plain and vivid.`;
    answer[`audience_${i}`] = `${AUDIENCES[Math.floor(next() * AUDIENCES.length)]} #${i}, reading at home.`;
  }
  return answer;
}
