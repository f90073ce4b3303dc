// A recipe from a JSON file: its own messages (slots {text} {prefix} {suffix} {genre} {audience}), sampling
// and post-processing, run by the built-in machinery its slots call for (rephrase, stretch or MAGA).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';
import { MegadocsError, messageOf } from '../../errors.js';
import type { PostprocessOptions } from '../postprocess.js';
import { messagesSchema, type PromptTemplate, type SlotName, slotsUsed } from '../templates/index.js';
import type { Sampling } from './types.js';

export type CustomKind = 'rephrase' | 'stretch' | 'maga';

const postprocessSchema = z
  .object({
    strip_boilerplate_line: z.boolean().default(true),
    min_tokens: z.number().int().min(0).default(0),
    max_tokens: z.number().int().min(0).default(0),
    drop_boilerplate_lines: z.boolean().default(false),
    min_keyword_overlap: z.number().min(0).max(1).default(0),
  })
  .strict();

const customRecipeSchema = z
  .object({
    name: z
      .string()
      .regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-" only')
      .optional(),
    kind: z.enum(['rephrase', 'stretch', 'maga']).optional(),
    messages: messagesSchema,
    prompt: z.string().optional(),
    pairs_messages: messagesSchema.optional(),
    pairs_prompt: z.string().optional(),
    generations: z.number().int().min(1).optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    max_tokens: z.number().int().min(1).optional(),
    postprocess: postprocessSchema.default(postprocessSchema.parse({})),
  })
  .strict();

export interface CustomRecipe {
  name: string;
  kind: CustomKind;
  template: PromptTemplate;
  /** MAGA stage 1, when the file gives its own. */
  pairsTemplate?: PromptTemplate;
  generations?: number;
  sampling: Sampling;
  postprocess: PostprocessOptions;
}

const KIND_SLOTS: Record<CustomKind, SlotName[]> = {
  rephrase: ['text'],
  stretch: ['prefix', 'suffix'],
  maga: ['genre', 'audience'],
};

/** The kind a template's slots call for: {prefix}/{suffix} stretch, {genre}/{audience} MAGA, else rephrase. */
function inferKind(slots: Set<SlotName>): CustomKind {
  if (slots.has('prefix') || slots.has('suffix')) return 'stretch';
  if (slots.has('genre') || slots.has('audience')) return 'maga';
  return 'rephrase';
}

export async function loadCustomRecipe(path: string): Promise<CustomRecipe> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new MegadocsError('BAD_CONFIG', `cannot read the recipe file (${messageOf(error)})`, {
      where: path,
      hint: 'Give a JSON file such as examples/recipe-custom.json',
    });
  }
  const parsed = customRecipeSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MegadocsError('BAD_CONFIG', `invalid recipe: ${issue.message}`, {
      where: `${path}: ${issue.path.join('.') || '(top level)'}`,
      hint: 'See examples/recipe-custom.json for the fields a recipe file may have',
    });
  }
  const spec = parsed.data;
  const template: PromptTemplate = { messages: spec.messages, prompt: spec.prompt };
  const slots = slotsUsed(template);
  const kind = spec.kind ?? inferKind(slots);
  if (!KIND_SLOTS[kind].some((slot) => slots.has(slot))) {
    throw new MegadocsError(
      'BAD_CONFIG',
      `a ${kind} recipe must use ${KIND_SLOTS[kind].map((s) => `{${s}}`).join(' or ')}`,
      {
        where: `${path}: messages`,
        hint: 'Put the slot where the document (or its part) goes in the prompt',
      },
    );
  }
  const post = spec.postprocess;
  return {
    name: spec.name ?? basename(path).replace(/\.json$/i, ''),
    kind,
    template,
    pairsTemplate: spec.pairs_messages
      ? { messages: spec.pairs_messages, prompt: spec.pairs_prompt }
      : undefined,
    generations: spec.generations,
    sampling: { temperature: spec.temperature, topP: spec.top_p, maxTokens: spec.max_tokens },
    postprocess: {
      stripLeadingBoilerplate: post.strip_boilerplate_line,
      minTokens: post.min_tokens,
      maxTokens: post.max_tokens,
      dropBoilerplateLines: post.drop_boilerplate_lines,
      minKeywordOverlap: post.min_keyword_overlap,
    },
  };
}
