// The MAGA recipe (METHODS.md §3): stage 1 asks for 5 genre/audience pairs as JSON (retried once when the
// answer is not valid, then the document is skipped), stage 2 rewrites the document once per pair.
import { z } from 'zod';
import { segmentCallName } from '../long-docs.js';
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

export const MAGA_PAIRS = 5;

export interface GenreAudience {
  genre: string;
  audience: string;
}

export interface MagaSettings {
  name: string;
  /** Rewrites per document: the first G of the 5 pairs (1..5). */
  generations: number;
  pairsSampling: Sampling;
  rewriteSampling: Sampling;
  /** Ask the server for a JSON object (`response_format`) in stage 1. */
  jsonMode: boolean;
  postprocess: PostprocessOptions;
  pairsTemplate: PromptTemplate;
  rewriteTemplate: PromptTemplate;
}

const text = z.string().trim().min(1);
const pairsSchema = z.object(
  Object.fromEntries(
    Array.from({ length: MAGA_PAIRS }, (_, i) => [
      [`genre_${i + 1}`, text],
      [`audience_${i + 1}`, text],
    ]).flat(),
  ) as Record<string, typeof text>,
);

/** The 5 pairs in a stage-1 answer (a JSON object, possibly in a ``` fence), or undefined when invalid. */
export function parsePairs(answer: string): GenreAudience[] | undefined {
  const unfenced = answer.trim().replace(/^```(?:json)?\s*([\s\S]*?)\s*```$/i, '$1');
  let json: unknown;
  try {
    json = JSON.parse(unfenced);
  } catch {
    return undefined;
  }
  const parsed = pairsSchema.safeParse(json);
  if (!parsed.success) return undefined;
  return Array.from({ length: MAGA_PAIRS }, (_, i) => ({
    genre: parsed.data[`genre_${i + 1}`]!,
    audience: parsed.data[`audience_${i + 1}`]!,
  }));
}

/** Stage 1: the pairs, after at most one retry with a fresh seed; a reason when there are none. */
async function askPairs(
  settings: MagaSettings,
  context: RecipeContext,
): Promise<{ pairs: GenreAudience[] } | { skipped: string }> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const outcome = await context.call({
      name: `pairs:${attempt}`,
      template: settings.pairsTemplate,
      // The pairs are asked of the first segment: the document's start says what it is.
      slots: { text: context.segments[0] ?? context.text },
      n: 1,
      sampling: settings.pairsSampling,
      responseFormat: settings.jsonMode ? 'json_object' : undefined,
    });
    if (!outcome.ok) return { skipped: 'pairs_request_failed' };
    const pairs = parsePairs(outcome.choices[0]!.text);
    if (pairs) return { pairs };
    if (attempt === 0) context.countRetry('invalid_pairs_json');
  }
  return { skipped: 'invalid_pairs_json' };
}

export function magaRecipe(settings: MagaSettings): Recipe {
  return {
    name: settings.name,
    generations: settings.generations,
    needsTokenizer: false,
    segmentsItself: true,
    prompts: [
      { template: settings.pairsTemplate, maxTokens: settings.pairsSampling.maxTokens },
      { template: settings.rewriteTemplate, maxTokens: settings.rewriteSampling.maxTokens },
    ],
    postprocess: settings.postprocess,
    async run(context: RecipeContext): Promise<RecipeOutput> {
      const stage1 = await askPairs(settings, context);
      if ('skipped' in stage1) {
        const failed = stage1.skipped === 'pairs_request_failed' ? settings.generations : 0;
        return { drafts: [], failed, skipped: stage1.skipped };
      }
      // Stage 2 rewrites every segment for each pair; the engine joins a pair's segments in order.
      const done = await Promise.all(
        stage1.pairs.slice(0, settings.generations).flatMap((pair, index) =>
          context.segments.map(async (segment, position) => {
            const outcome = await context.call({
              name: segmentCallName(`rewrite:${index}`, position),
              template: settings.rewriteTemplate,
              slots: { text: segment, genre: pair.genre, audience: pair.audience },
              n: 1,
              sampling: settings.rewriteSampling,
            });
            if (!outcome.ok) return { drafts: [] as Draft[], failed: 1 };
            return { drafts: draftsOf(outcome, () => ({ index, ...pair, segment: position })), failed: 0 };
          }),
        ),
      );
      return {
        drafts: done.flatMap((request) => request.drafts),
        failed: done.reduce((sum, request) => sum + request.failed, 0),
        segments: context.segments.length,
      };
    },
  };
}
