// Prompt templates: the default set by name (`rephrase.wiki`, `maga.pairs`, `stretch.rationale`, ...),
// overrides from a JSON file, and the one-pass filling of the {text} {prefix} {suffix} {genre} {audience} slots.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { ChatMessage, PromptFormat } from '../../backends/backend.js';
import { MegadocsError, messageOf } from '../../errors.js';
import { MAGA_TEMPLATES } from './maga.js';
import { REPHRASE_TEMPLATES } from './rephrase.js';
import { STRETCH_TEMPLATES } from './stretch.js';

/** A prompt: chat messages, and optionally a plain-text form for base models (`--api completions`). */
export interface PromptTemplate {
  messages: ChatMessage[];
  prompt?: string;
}

export type TemplateSet = Record<string, PromptTemplate>;

export const SLOT_NAMES = ['text', 'prefix', 'suffix', 'genre', 'audience'] as const;
export type SlotName = (typeof SLOT_NAMES)[number];
export type Slots = Partial<Record<SlotName, string>>;

function prefixed(recipe: string, templates: Record<string, PromptTemplate>): TemplateSet {
  return Object.fromEntries(
    Object.entries(templates).map(([name, template]) => [`${recipe}.${name}`, template]),
  );
}

export const DEFAULT_TEMPLATES: TemplateSet = {
  ...prefixed('rephrase', REPHRASE_TEMPLATES),
  ...prefixed('maga', MAGA_TEMPLATES),
  ...prefixed('stretch', STRETCH_TEMPLATES),
};

const SLOT_PATTERN = new RegExp(`\\{(${SLOT_NAMES.join('|')})\\}`, 'g');

/** Fills the slots in one pass (a slot's value is never scanned for slots); other braces stay as they are. */
export function fillSlots(text: string, slots: Slots): string {
  return text.replace(SLOT_PATTERN, (whole, name: SlotName) => slots[name] ?? whole);
}

/**
 * The filled prompt in the form a backend takes: chat messages, or plain text (the template's `prompt`,
 * else its messages' contents one after the other).
 */
export function renderPrompt(
  template: PromptTemplate,
  slots: Slots,
  format: PromptFormat,
): { messages: ChatMessage[] } | { prompt: string } {
  if (format === 'text') {
    const text = template.prompt ?? template.messages.map((message) => message.content).join('\n\n');
    return { prompt: fillSlots(text, slots) };
  }
  return {
    messages: template.messages.map((message) => ({
      role: message.role,
      content: fillSlots(message.content, slots),
    })),
  };
}

/** The slots a template uses. */
export function slotsUsed(template: PromptTemplate): Set<SlotName> {
  const texts = [...template.messages.map((message) => message.content), template.prompt ?? ''];
  const found = new Set<SlotName>();
  for (const text of texts) for (const match of text.matchAll(SLOT_PATTERN)) found.add(match[1] as SlotName);
  return found;
}

export const messagesSchema = z
  .array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() }))
  .min(1);

/** A template in a file: `{messages, prompt?}`, or a bare string meaning one user message. */
const templateSchema = z.union([
  z.string().transform((content): PromptTemplate => ({ messages: [{ role: 'user', content }] })),
  z.object({ messages: messagesSchema, prompt: z.string().optional() }),
]);

/** Reads a `--templates` file: `{"rephrase.wiki": {...}, "maga.rewrite": "..."}`; unknown names are refused. */
export async function loadTemplates(path: string): Promise<TemplateSet> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new MegadocsError('BAD_CONFIG', `cannot read the templates file (${messageOf(error)})`, {
      where: path,
      hint: 'Give a JSON object that maps template names to {"messages": [...], "prompt": "..."}',
    });
  }
  const parsed = z.record(z.string(), templateSchema).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MegadocsError('BAD_CONFIG', `invalid template: ${issue.message}`, {
      where: `${path}: ${issue.path.join('.')}`,
      hint: 'Each template is {"messages": [{"role": "user", "content": "... {text} ..."}], "prompt": "..."}',
    });
  }
  for (const name of Object.keys(parsed.data)) {
    if (!(name in DEFAULT_TEMPLATES)) {
      throw new MegadocsError('BAD_CONFIG', `unknown template "${name}"`, {
        where: path,
        hint: `Known templates: ${Object.keys(DEFAULT_TEMPLATES).join(', ')}`,
      });
    }
  }
  return { ...DEFAULT_TEMPLATES, ...parsed.data };
}
