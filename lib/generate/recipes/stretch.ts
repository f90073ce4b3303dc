// The stretch recipe (METHODS.md §2): cut the document into G + 1 pieces of equal token length and ask,
// for each split point k, for the reasoning that leads from the text before it to the text after it.
import { MegadocsError } from '../../errors.js';
import { equalTokenSplits } from '../input.js';
import { windowAround } from '../long-docs.js';
import type { PostprocessOptions } from '../postprocess.js';
import type { PromptTemplate } from '../templates/index.js';
import {
  type Draft,
  draftsOf,
  type Recipe,
  type RecipeContext,
  type RecipeOutput,
  type Sampling,
} from './types.js';

export interface StretchSettings {
  name: string;
  /** Split points per document (G): G rationales, G + 1 pieces. */
  generations: number;
  sampling: Sampling;
  postprocess: PostprocessOptions;
  template: PromptTemplate;
}

/** The text before and after a split: all of it, or, when it is over the input budget, a window around it. */
function slotsAround(context: RecipeContext, offset: number): { prefix: string; suffix: string } {
  const whole = { prefix: context.text.slice(0, offset), suffix: context.text.slice(offset) };
  const { inputBudget, generatorTokenizer } = context;
  if (inputBudget === undefined || !generatorTokenizer || context.segments.length <= 1) return whole;
  return windowAround(context.text, offset, inputBudget, generatorTokenizer);
}

export function stretchRecipe(settings: StretchSettings): Recipe {
  return {
    name: settings.name,
    generations: settings.generations,
    needsTokenizer: true,
    // Its split points are placed over the whole document, each prompt built from a window around its split.
    segmentsItself: true,
    prompts: [{ template: settings.template, maxTokens: settings.sampling.maxTokens }],
    postprocess: settings.postprocess,
    async run(context: RecipeContext): Promise<RecipeOutput> {
      if (!context.textTokenizer) {
        throw new MegadocsError(
          'BAD_CONFIG',
          'the stretch recipe needs a tokenizer to place its split points',
          {
            where: settings.name,
            hint: 'Pass a textTokenizer (the CLI loads --tokenizer)',
          },
        );
      }
      // A text of fewer than G + 1 tokens gets fewer split points (none: the document is skipped).
      const offsets = equalTokenSplits(context.text, settings.generations, context.textTokenizer);
      if (offsets.length === 0) return { drafts: [], failed: 0, skipped: 'too_short_to_split' };
      const done = await Promise.all(
        offsets.map(async (offset, position) => {
          const split = position + 1;
          const outcome = await context.call({
            name: `split:${split}`,
            template: settings.template,
            slots: slotsAround(context, offset),
            n: 1,
            sampling: settings.sampling,
          });
          if (!outcome.ok) return { drafts: [] as Draft[], failed: 1 };
          const drafts = draftsOf(outcome, () => ({
            style: 'rationale',
            index: position,
            split,
            splitOffset: offset,
          }));
          return { drafts, failed: 0 };
        }),
      );
      return {
        drafts: done.flatMap((request) => request.drafts),
        failed: done.reduce((sum, request) => sum + request.failed, 0),
      };
    },
  };
}
