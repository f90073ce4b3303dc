// Cleaning of model outputs: strip a leading boilerplate line ("Here is a paraphrased version:"),
// drop outputs outside the token bounds, and MAGA's filters (boilerplate lines, no shared keywords).

export interface PostprocessOptions {
  /** Remove a first line such as "Sure! Here is the rewritten text:". */
  stripLeadingBoilerplate: boolean;
  /** Drop outputs with fewer tokens (0: no lower bound). */
  minTokens: number;
  /** Drop outputs with more tokens (0: no upper bound). */
  maxTokens: number;
  /** Drop outputs that contain a line such as "Note: ..." or "Please note that ..." (MAGA's cleaning). */
  dropBoilerplateLines: boolean;
  /** Drop outputs that contain less than this share of the source's main keywords (0: off). */
  minKeywordOverlap: number;
}

export const NO_POSTPROCESS: PostprocessOptions = {
  stripLeadingBoilerplate: false,
  minTokens: 0,
  maxTokens: 0,
  dropBoilerplateLines: false,
  minKeywordOverlap: 0,
};

/** The kept text, or why the output was dropped (a filter name, counted in the summary). */
export type PostprocessResult = { text: string; dropped?: undefined } | { dropped: string; text?: undefined };

const LEADING_BOILERPLATE = [
  /^(?:sure|certainly|okay|ok|of course|absolutely)[!.,]?$/i,
  /^(?:sure|certainly|okay|ok|of course|absolutely)\b.{0,200}:\**$/i,
  /^(?:here is|here's|here are|below is|below are|the following is|the following are)\b.{0,200}:\**$/i,
];

const BOILERPLATE_LINE = /^\W{0,4}(?:note:|please note that|the following is)/i;

const STOPWORDS = new Set(
  (
    'about above after again against also because been before being below between both could does doing down ' +
    'during each from further have having here into itself just more most once only other over same should ' +
    'some such than that their them then there these they this those through under until very were what when ' +
    'where which while whom will with would your yours'
  ).split(' '),
);

const KEYWORDS_PER_SOURCE = 20;
/** A source with fewer keywords than this is not checked for overlap. */
const MIN_SOURCE_KEYWORDS = 5;

function words(text: string): string[] {
  return text.toLowerCase().match(/\p{L}[\p{L}\p{N}'-]{3,}/gu) ?? [];
}

/** The most frequent content words of a text (ties broken by first appearance). */
export function mainKeywords(text: string, count = KEYWORDS_PER_SOURCE): string[] {
  const frequency = new Map<string, number>();
  for (const word of words(text))
    if (!STOPWORDS.has(word)) frequency.set(word, (frequency.get(word) ?? 0) + 1);
  return [...frequency.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([word]) => word);
}

/** Share of the source's main keywords that appear in the output; 1 when the source has too few to judge. */
export function keywordOverlap(sourceKeywords: string[], output: string): number {
  if (sourceKeywords.length < MIN_SOURCE_KEYWORDS) return 1;
  const present = new Set(words(output));
  return sourceKeywords.filter((word) => present.has(word)).length / sourceKeywords.length;
}

export function stripLeadingBoilerplate(text: string): string {
  const trimmed = text.replace(/^\s+/, '');
  const lineEnd = trimmed.indexOf('\n');
  const first = (lineEnd < 0 ? trimmed : trimmed.slice(0, lineEnd)).trim();
  if (lineEnd < 0 || !LEADING_BOILERPLATE.some((pattern) => pattern.test(first))) return trimmed;
  return trimmed.slice(lineEnd + 1).replace(/^\s+/, '');
}

/**
 * Applies the options to one output. `countTokens` is needed only with token bounds; `sourceKeywords`
 * (from `mainKeywords(source)`) only with a keyword overlap threshold.
 */
export function postprocess(
  output: string,
  options: PostprocessOptions,
  countTokens?: (text: string) => number,
  sourceKeywords: string[] = [],
): PostprocessResult {
  const text = options.stripLeadingBoilerplate ? stripLeadingBoilerplate(output) : output.trim();
  if (text.trim() === '') return { dropped: 'empty' };
  if (options.dropBoilerplateLines && text.split('\n').some((line) => BOILERPLATE_LINE.test(line.trim()))) {
    return { dropped: 'boilerplate' };
  }
  if (options.minKeywordOverlap > 0 && keywordOverlap(sourceKeywords, text) < options.minKeywordOverlap) {
    return { dropped: 'off_topic' };
  }
  if ((options.minTokens > 0 || options.maxTokens > 0) && countTokens) {
    const tokens = countTokens(text);
    if (options.minTokens > 0 && tokens < options.minTokens) return { dropped: 'too_short' };
    if (options.maxTokens > 0 && tokens > options.maxTokens) return { dropped: 'too_long' };
  }
  return { text };
}
