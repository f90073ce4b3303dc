// From `--recipe` and its flags to a Recipe: the built-in rephrase, MAGA and stretch with their default
// sampling and filters, or a custom JSON recipe; `--temperature`, `--top-p`, `--max-tokens` override them.
import { MegadocsError } from '../../errors.js';
import { NO_POSTPROCESS, type PostprocessOptions } from '../postprocess.js';
import { DEFAULT_TEMPLATES, type TemplateSet } from '../templates/index.js';
import { type CustomRecipe, loadCustomRecipe } from './custom.js';
import { MAGA_PAIRS, magaRecipe } from './maga.js';
import { rephraseRecipe } from './rephrase.js';
import { stretchRecipe } from './stretch.js';
import type { Recipe, Sampling } from './types.js';

export const BUILT_IN_RECIPES = ['rephrase', 'maga', 'stretch'] as const;

/** G when `--generations` is not given. */
export const DEFAULT_GENERATIONS: Record<(typeof BUILT_IN_RECIPES)[number], number> = {
  rephrase: 4,
  maga: MAGA_PAIRS,
  stretch: 4,
};

/** Defaults from METHODS.md: megadocs rephrasing (T=1, 1024 new tokens), stretching (T=1, 512). */
const DEFAULT_SAMPLING: Record<string, Sampling> = {
  rephrase: { temperature: 1.0, maxTokens: 1024 },
  'maga.pairs': { temperature: 0.7, maxTokens: 1024 },
  'maga.rewrite': { temperature: 0.7, maxTokens: 2048 },
  stretch: { temperature: 1.0, maxTokens: 512 },
};

const STRIP: PostprocessOptions = { ...NO_POSTPROCESS, stripLeadingBoilerplate: true };
/** MAGA's cleaning: no "Note:"-style lines, and at least some of the source's keywords. */
const MAGA_CLEANING: PostprocessOptions = { ...STRIP, dropBoilerplateLines: true, minKeywordOverlap: 0.1 };

export interface RecipeOptions {
  /** `rephrase`, `maga`, `stretch`, or the path of a custom recipe (`.json`). */
  recipe: string;
  /** G; each recipe has its default. */
  generations?: number;
  /** Rephrase styles (default `wiki`). */
  styles?: string[];
  /** Most samples in one request (`--n-per-request`). */
  nPerRequest: number;
  /** `--temperature`, `--top-p`, `--max-tokens`: override the recipe's values when set. */
  sampling?: Sampling;
  /** Prompt templates (the defaults with a `--templates` file merged in). */
  templates?: TemplateSet;
  /** Use `response_format: json_object` for MAGA's stage 1. */
  jsonMode?: boolean;
}

function withOverrides(base: Sampling, overrides: Sampling = {}): Sampling {
  return {
    temperature: overrides.temperature ?? base.temperature,
    topP: overrides.topP ?? base.topP,
    maxTokens: overrides.maxTokens ?? base.maxTokens,
  };
}

function checkGenerations(recipe: string, generations: number, most?: number): number {
  if (!Number.isInteger(generations) || generations < 1 || (most !== undefined && generations > most)) {
    throw new MegadocsError(
      'BAD_OPTION',
      `${recipe} takes 1${most ? `..${most}` : ' or more'} generations, got ${generations}`,
      {
        where: '--generations',
        hint: most
          ? `MAGA rewrites a document once per genre/audience pair, and asks for ${most} pairs`
          : undefined,
      },
    );
  }
  return generations;
}

export async function resolveRecipe(options: RecipeOptions): Promise<Recipe> {
  const templates = options.templates ?? DEFAULT_TEMPLATES;
  const jsonMode = options.jsonMode ?? true;
  if (options.styles?.length && options.recipe !== 'rephrase') {
    throw new MegadocsError(
      'BAD_OPTION',
      `--styles applies to the rephrase recipe, not to ${options.recipe}`,
      {
        where: '--styles',
        hint: 'Leave --styles out, or use --recipe rephrase',
      },
    );
  }
  switch (options.recipe) {
    case 'rephrase':
      return rephraseRecipe({
        name: 'rephrase',
        styles: options.styles?.length ? options.styles : ['wiki'],
        generations: checkGenerations('rephrase', options.generations ?? DEFAULT_GENERATIONS.rephrase),
        nPerRequest: options.nPerRequest,
        sampling: withOverrides(DEFAULT_SAMPLING.rephrase!, options.sampling),
        postprocess: STRIP,
        templates,
        templatePrefix: 'rephrase.',
      });
    case 'maga':
      return magaRecipe({
        name: 'maga',
        generations: checkGenerations('maga', options.generations ?? MAGA_PAIRS, MAGA_PAIRS),
        pairsSampling: DEFAULT_SAMPLING['maga.pairs']!,
        rewriteSampling: withOverrides(DEFAULT_SAMPLING['maga.rewrite']!, options.sampling),
        jsonMode,
        postprocess: MAGA_CLEANING,
        pairsTemplate: templates['maga.pairs']!,
        rewriteTemplate: templates['maga.rewrite']!,
      });
    case 'stretch':
      return stretchRecipe({
        name: 'stretch',
        generations: checkGenerations('stretch', options.generations ?? DEFAULT_GENERATIONS.stretch),
        sampling: withOverrides(DEFAULT_SAMPLING.stretch!, options.sampling),
        postprocess: STRIP,
        template: templates['stretch.rationale']!,
      });
  }
  if (!options.recipe.toLowerCase().endsWith('.json')) {
    throw new MegadocsError('BAD_OPTION', `unknown recipe "${options.recipe}"`, {
      where: '--recipe',
      hint: `Use ${BUILT_IN_RECIPES.join(', ')}, or the path of a recipe file ending in .json`,
    });
  }
  return customToRecipe(await loadCustomRecipe(options.recipe), options, templates, jsonMode);
}

function customToRecipe(
  custom: CustomRecipe,
  options: RecipeOptions,
  templates: TemplateSet,
  jsonMode: boolean,
): Recipe {
  const sampling = withOverrides(
    withOverrides(DEFAULT_SAMPLING[custom.kind === 'maga' ? 'maga.rewrite' : custom.kind]!, custom.sampling),
    options.sampling,
  );
  const generations = options.generations ?? custom.generations;
  switch (custom.kind) {
    case 'rephrase':
      return rephraseRecipe({
        name: custom.name,
        styles: [custom.name],
        generations: checkGenerations(custom.name, generations ?? DEFAULT_GENERATIONS.rephrase),
        nPerRequest: options.nPerRequest,
        sampling,
        postprocess: custom.postprocess,
        templates: { [custom.name]: custom.template },
        templatePrefix: '',
      });
    case 'stretch':
      return stretchRecipe({
        name: custom.name,
        generations: checkGenerations(custom.name, generations ?? DEFAULT_GENERATIONS.stretch),
        sampling,
        postprocess: custom.postprocess,
        template: custom.template,
      });
    case 'maga':
      return magaRecipe({
        name: custom.name,
        generations: checkGenerations(custom.name, generations ?? MAGA_PAIRS, MAGA_PAIRS),
        pairsSampling: DEFAULT_SAMPLING['maga.pairs']!,
        rewriteSampling: sampling,
        jsonMode,
        postprocess: custom.postprocess,
        pairsTemplate: custom.pairsTemplate ?? templates['maga.pairs']!,
        rewriteTemplate: custom.template,
      });
  }
}

/** Whether running `recipe` needs a tokenizer (its split points, or token bounds on its outputs). */
export function recipeNeedsTokenizer(recipe: Recipe): boolean {
  return recipe.needsTokenizer || recipe.postprocess.minTokens > 0 || recipe.postprocess.maxTokens > 0;
}
