// Default prompts of the rephrase recipe, one per style (METHODS.md §1), in this project's own wording.
// Each has a chat form and a plain-text form for base models; a --templates file can replace any of them.
import type { PromptTemplate } from './index.js';

const WRITER =
  'You rewrite documents. Keep every fact, name and number of the source, add nothing that is not in it, ' +
  'and answer with the rewritten text only, with no introduction and no comment.';

function style(instruction: string, baseModelCue: string): PromptTemplate {
  return {
    messages: [
      { role: 'system', content: WRITER },
      { role: 'user', content: `${instruction}\n\nDocument:\n{text}` },
    ],
    prompt: `Document:\n{text}\n\n${baseModelCue}\n`,
  };
}

export const REPHRASE_TEMPLATES: Record<string, PromptTemplate> = {
  wiki: style(
    'Rewrite the document below as a well-written encyclopedia article in the manner of Wikipedia: ' +
      'neutral tone, clear structure, complete sentences. Keep all of its information.',
    'The same content, written as an encyclopedia article:',
  ),
  qa: style(
    'Write up to eight varied questions about the document below, each followed by its answer, taken ' +
      'from the document. Start every question with "Question:" and every answer with "Answer:".',
    'Questions and answers about this document:',
  ),
  simple: style(
    'Explain the document below in very simple words and short sentences, so that a small child could ' +
      'follow it. Keep the facts and leave out the jargon.',
    'The same content, explained in very simple words:',
  ),
  terse: style(
    'Rewrite the document below in terse, erudite prose, as a scholar would write it: dense, precise ' +
      'vocabulary and no filler. Keep all of its information.',
    'The same content, in terse scholarly prose:',
  ),
  distill: style(
    'Condense the document below into a short, clear paraphrase that keeps its essential information and ' +
      'drops repetition, asides and boilerplate.',
    'A short paraphrase of the essential content:',
  ),
  knowledge: style(
    'Extract the knowledge contained in the document below and write it up as textbook passages that teach ' +
      'each concept, fact or method it holds. Leave out what carries no knowledge (navigation, ads, chatter).',
    'The knowledge in this document, written as textbook passages:',
  ),
  facts: style(
    'List the facts and figures stated in the document below as a concise bulleted list: one fact per ' +
      'line, each understandable on its own.',
    'The facts and figures of this document, one per line:',
  ),
};
