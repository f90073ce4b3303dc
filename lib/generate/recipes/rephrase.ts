// The rephrase recipe (METHODS.md §1): G rewrites of the whole document spread round-robin over the
// styles; the generations of one style go out as few requests as `n` allows (prefix sharing on the server).
import { MegadocsError } from '../../errors.js';
import type { PostprocessOptions } from '../postprocess.js';
import type { TemplateSet } from '../templates/index.js';
import {
  type Draft,
  draftsOf,
  type Recipe,
  type RecipeContext,
  type RecipeOutput,
  type Sampling,
} from './types.js';

export const REPHRASE_STYLES = ['wiki', 'qa', 'simple', 'terse', 'distill', 'knowledge', 'facts'] as const;

export interface RephraseSettings {
  name: string;
  styles: string[];
  generations: number;
  /** Most samples per request (`--n-per-request`). */
  nPerRequest: number;
  sampling: Sampling;
  postprocess: PostprocessOptions;
  /** Template of style S is `templates[templatePrefix + S]`. */
  templates: TemplateSet;
  templatePrefix: string;
}

/** Generation indexes of each style, in round-robin order: style k gets k, k + S, k + 2S, ... */
export function indexesByStyle(styles: string[], generations: number): Map<string, number[]> {
  const byStyle = new Map<string, number[]>(styles.map((style) => [style, []]));
  for (let index = 0; index < generations; index += 1)
    byStyle.get(styles[index % styles.length]!)!.push(index);
  return byStyle;
}

export function rephraseRecipe(settings: RephraseSettings): Recipe {
  for (const style of settings.styles) {
    if (!settings.templates[settings.templatePrefix + style]) {
      throw new MegadocsError('BAD_OPTION', `unknown style "${style}"`, {
        where: '--styles',
        hint: `Styles of ${settings.name}: ${REPHRASE_STYLES.join(', ')}`,
      });
    }
  }
  const plan = indexesByStyle(settings.styles, settings.generations);
  return {
    name: settings.name,
    generations: settings.generations,
    needsTokenizer: false,
    prompts: settings.styles.map((style) => ({
      template: settings.templates[settings.templatePrefix + style]!,
      maxTokens: settings.sampling.maxTokens,
    })),
    postprocess: settings.postprocess,
    async run(context: RecipeContext): Promise<RecipeOutput> {
      const requests: Array<Promise<{ drafts: Draft[]; failed: number }>> = [];
      for (const [style, indexes] of plan) {
        const template = settings.templates[settings.templatePrefix + style]!;
        for (let start = 0; start < indexes.length; start += settings.nPerRequest) {
          const batch = indexes.slice(start, start + settings.nPerRequest);
          requests.push(
            context
              .call({
                name: `${style}:${batch[0]}`,
                template,
                slots: { text: context.text },
                n: batch.length,
                sampling: settings.sampling,
              })
              .then((outcome) =>
                outcome.ok
                  ? { drafts: draftsOf(outcome, (choice) => ({ style, index: batch[choice]! })), failed: 0 }
                  : { drafts: [], failed: batch.length },
              ),
          );
        }
      }
      const done = await Promise.all(requests);
      return {
        drafts: done.flatMap((request) => request.drafts).sort((a, b) => a.index - b.index),
        failed: done.reduce((sum, request) => sum + request.failed, 0),
      };
    },
  };
}
