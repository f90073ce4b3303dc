// Default prompt of the stretch recipe (METHODS.md §2), in this project's own wording: the reasoning
// and background knowledge that lead from the text before a split point to the text after it.
import type { PromptTemplate } from './index.js';

const RATIONALE_REQUEST =
  'Below are the beginning of a document and its continuation, with a gap between them. Write the ' +
  'background knowledge and the reasoning that an expert reader would think through at the gap: what one ' +
  'needs to know and infer to get from the beginning to the continuation. Write it as one short passage of ' +
  'thought, and do not repeat the text itself.';

export const STRETCH_TEMPLATES: Record<string, PromptTemplate> = {
  rationale: {
    messages: [
      { role: 'system', content: 'You are an expert who makes the reasoning behind texts explicit.' },
      { role: 'user', content: `${RATIONALE_REQUEST}\n\nBeginning:\n{prefix}\n\nContinuation:\n{suffix}` },
    ],
    prompt: `{prefix}\n\n[The reasoning behind what comes next:]\n`,
  },
};
