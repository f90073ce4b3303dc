// Default prompts of the MAGA recipe (METHODS.md §3), in this project's own wording: stage 1 asks for
// five genre/audience pairs as a JSON object, stage 2 rewrites the document once per pair.
import type { PromptTemplate } from './index.js';

const PAIRS_REQUEST =
  'Read the document below and propose 5 different ways to rewrite it, each one a pair of a genre and an ' +
  'audience.\n' +
  '- A genre is a purely textual form (for example a textbook section, a news feature, a personal letter, ' +
  'a lecture transcript, a forum answer). Describe its style, tone and form in 2 or 3 sentences.\n' +
  '- An audience is a particular kind of reader. Describe them in 2 sentences: age, occupation, education, ' +
  'motivation. Make the five audiences diverse, and include at least one reader who is uninterested in ' +
  'the topic or hostile to it.\n' +
  'Answer with one JSON object and nothing else, with the string keys genre_1, audience_1, genre_2, ' +
  'audience_2, genre_3, audience_3, genre_4, audience_4, genre_5, audience_5.';

const REWRITE_REQUEST =
  'Rewrite the document below in the following genre, for the following audience.\n\n' +
  'Genre: {genre}\nAudience: {audience}\n\n' +
  'Keep all of the information of the document; change its form, tone and wording to fit the genre and ' +
  'to reach this audience. Answer with the new text only.';

export const MAGA_TEMPLATES: Record<string, PromptTemplate> = {
  pairs: {
    messages: [
      {
        role: 'system',
        content: 'You are an editor who plans how one text can be retold for different readers.',
      },
      { role: 'user', content: `${PAIRS_REQUEST}\n\nDocument:\n{text}` },
    ],
    prompt: `Document:\n{text}\n\n${PAIRS_REQUEST}\n\nJSON:\n`,
  },
  rewrite: {
    messages: [
      {
        role: 'system',
        content: 'You are a versatile writer. You never add facts that are not in the source you are given.',
      },
      { role: 'user', content: `${REWRITE_REQUEST}\n\nDocument:\n{text}` },
    ],
    prompt: `Document:\n{text}\n\nThe same document as {genre}, for {audience}:\n`,
  },
};
