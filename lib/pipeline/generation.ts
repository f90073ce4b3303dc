// What `generate` and `run` share: the recipe a config names (templates and sampling overrides applied),
// and the generation part of their chains: `documents` transforms, the generate stage, `generations` transforms.
import { generateStage } from '../generate/engine.js';
import type { TextTokenizer } from '../generate/input.js';
import { resolveRecipe } from '../generate/recipes/index.js';
import type { Recipe } from '../generate/recipes/types.js';
import type { GenerateStats } from '../generate/stats.js';
import { loadTemplates } from '../generate/templates/index.js';
import type { JobContext } from './executor.js';
import type { AnyStep } from './steps.js';
import { transformSteps } from './transforms.js';

/** The recipe and request fields both commands' configs have. */
export interface GenerationConfig {
  recipe: string;
  generations?: number;
  styles?: string[];
  templates?: string;
  nPerRequest: number;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  jsonMode: boolean;
  model: string;
  seed: number;
  onTruncated: 'keep' | 'drop';
  maxInputTokens?: number;
}

/** The recipe of `config`, with its `--templates` file and sampling overrides. */
export async function recipeFor(config: GenerationConfig): Promise<Recipe> {
  return resolveRecipe({
    recipe: config.recipe,
    generations: config.generations,
    styles: config.styles,
    nPerRequest: config.nPerRequest,
    sampling: { temperature: config.temperature, topP: config.topP, maxTokens: config.maxTokens },
    templates: config.templates ? await loadTemplates(config.templates) : undefined,
    jsonMode: config.jsonMode,
  });
}

export interface GenerationParts {
  recipe: Recipe;
  textTokenizer?: TextTokenizer;
  stats: GenerateStats;
  signal?: AbortSignal;
}

/** Source documents to each document's generations: `documents` transforms, generate, `generations` transforms. */
export function generationSteps(
  config: GenerationConfig,
  parts: GenerationParts,
  { backend, journal, transforms }: JobContext,
): AnyStep[] {
  return [
    ...transformSteps(transforms, 'documents'),
    {
      name: 'generate',
      stage: generateStage({
        backend: backend!,
        recipe: parts.recipe,
        model: config.model,
        seed: config.seed,
        onTruncated: config.onTruncated,
        maxInputTokens: config.maxInputTokens,
        textTokenizer: parts.textTokenizer,
        journal,
        stats: parts.stats,
        signal: parts.signal,
      }),
    },
    ...transformSteps(transforms, 'generations'),
  ];
}
