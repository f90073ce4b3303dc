// The `megadocs run` config: one flat object whose keys are the command's long flags in camelCase, checked
// with zod; every problem is reported with its JSON path, its flag, the accepted values and what was given.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ASSEMBLE_MODES } from './assemble/index.js';
import { MegadocsError, messageOf } from './errors.js';
import { defaultConcurrency, isLocalLlm, localModelName, parseLocalSpec } from './generate/local-model.js';
import { TAIL_MODES } from './pack.js';
import { parseCompression } from './sinks/mds.js';
import { checkTokenizerSpec } from './tokenize/encoders.js';

const wholeNumber = (min: number) => z.number().int().min(min);
/** A list given as a JSON array or as one comma-separated string (the form the flags take). */
const list = (item: z.ZodString, min = 0) =>
  z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter(Boolean)
        : value,
    z.array(item).min(min),
  );
const serverUrl = z.string().regex(/^(https?:\/\/\S+|local:\S+)$/, {
  error: 'expected an http:// or https:// base URL such as http://host:8000/v1, or local:MODEL.gguf',
});

export const runConfigSchema = z
  .strictObject({
    // What goes in and where the run directory is.
    inputs: z.array(z.string().min(1)).min(1),
    out: z.string().min(1),
    overwrite: z.boolean().default(false),
    textField: z.string().min(1).default('text'),
    idField: z.string().min(1).default('id'),
    onError: z.enum(['fail', 'skip']).default('fail'),
    /** This worker among worldSize (each reads its share of the input shards into OUT/rank-NNNNN/). */
    rank: wholeNumber(0).optional(),
    worldSize: wholeNumber(1).optional(),
    // The servers and the requests (the generate command's flags).
    llm: list(serverUrl, 1),
    /** Required with servers; a `local:` model is named after its file. */
    model: z.string().min(1).optional(),
    threads: wholeNumber(1).optional(),
    api: z.enum(['chat', 'completions']).default('chat'),
    apiKeyEnv: z.string().min(1).default('OPENAI_API_KEY'),
    concurrency: wholeNumber(1).optional(),
    maxRetries: wholeNumber(0).default(8),
    timeout: z.number().min(0.001).max(86_400).default(600),
    recipe: z.string().min(1).default('rephrase'),
    generations: wholeNumber(1).optional(),
    styles: list(z.string().min(1)).optional(),
    templates: z.string().min(1).optional(),
    nPerRequest: wholeNumber(1).default(16),
    temperature: z.number().min(0).max(2).optional(),
    topP: z.number().gt(0).max(1).optional(),
    maxTokens: wholeNumber(1).optional(),
    seed: wholeNumber(0).default(0),
    onTruncated: z.enum(['keep', 'drop']).default('keep'),
    maxInputTokens: wholeNumber(1).optional(),
    jsonMode: z.boolean().default(true),
    // Assembly.
    assemble: z.enum(ASSEMBLE_MODES).default('stitch'),
    original: z.enum(['back', 'front', 'none']).default('back'),
    separator: z.enum(['eos', 'text']).default('eos'),
    join: z.string().default('\n\n'),
    thoughtOpen: z.string().default('<think>'),
    thoughtClose: z.string().default('</think>'),
    minGenerations: wholeNumber(0).default(1),
    // Mixing and shuffling.
    streams: z.enum(['mixed', 'separate']).default('mixed'),
    syntheticWeight: z.number().min(0).lt(1).optional(),
    realEpochs: wholeNumber(0).default(1),
    shuffle: z.boolean().default(true),
    shuffleSeed: wholeNumber(0).default(0),
    shuffleWindow: wholeNumber(1).default(8192),
    // Tokenize, pack and the MDS sink (the pack command's flags).
    tokenizer: z.string().default('o200k_base'),
    workers: wholeNumber(0).default(() => availableParallelism()),
    eos: z.boolean().default(true),
    bos: z.boolean().default(false),
    seqLen: wholeNumber(1).default(4096),
    tail: z.enum(TAIL_MODES).default('drop'),
    format: z.string().default('mds'),
    boundaries: z.boolean().default(false),
    compression: z.string().default('zstd:3'),
    shardSize: wholeNumber(1).default(1 << 26),
    hashes: list(z.string().min(1)).default(['sha1']),
  })
  .superRefine((config, context) => {
    const problem = (key: string, message: string) =>
      context.addIssue({ code: 'custom', path: [key], message });
    if (config.recipe === 'stretch' && config.assemble !== 'stretch') {
      problem(
        'assemble',
        'the stretch recipe makes rationales that go between the pieces of their document: use "stretch"',
      );
    }
    if (config.assemble === 'stretch' && (config.recipe === 'rephrase' || config.recipe === 'maga')) {
      problem(
        'assemble',
        `"stretch" needs the rationales of the stretch recipe, not ${config.recipe}: use "stitch" or "none"`,
      );
    }
    if (config.syntheticWeight !== undefined && config.realEpochs === 0) {
      problem(
        'syntheticWeight',
        'a weight needs real tokens to weigh against: leave it out with realEpochs 0 (synthetic only)',
      );
    }
    if (config.llm.some(isLocalLlm) && config.llm.length > 1) {
      problem('llm', 'a local: model runs alone: give one local:MODEL.gguf, or server URLs only');
    } else if (config.model === undefined && !isLocalLlm(config.llm[0]!)) {
      problem('model', 'required with server URLs: the model name the server knows');
    }
    if (config.rank !== undefined && (config.worldSize === undefined || config.rank >= config.worldSize)) {
      problem('rank', `expected a rank below worldSize (${config.worldSize ?? 'not given'})`);
    }
    if (config.format !== 'mds') {
      problem('format', 'expected "mds": megadocs run writes token shards (`megadocs generate` writes text)');
    }
    for (const [key, check] of [
      ['llm', () => config.llm.filter(isLocalLlm).forEach(parseLocalSpec)],
      ['tokenizer', () => checkTokenizerSpec(config.tokenizer)],
      ['compression', () => parseCompression(config.compression)],
    ] as const) {
      try {
        check();
      } catch (error) {
        problem(key, messageOf(error));
      }
    }
  });

/** A checked config with every default filled in; `model` is set (a local model's file name by default). */
export type RunConfig = Omit<z.output<typeof runConfigSchema>, 'model' | 'concurrency'> & {
  model: string;
  concurrency: number;
};
/** The keys a config may have: the long flags of `megadocs run`, camelCased (plus `inputs`). */
export const RUN_CONFIG_KEYS: readonly string[] = Object.keys(runConfigSchema.shape);

/** Flags whose default is on: the command line spells them `--no-...`. */
const NEGATED_FLAGS = new Set(['eos', 'jsonMode', 'shuffle']);

export function flagOf(key: string): string {
  const kebab = key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  if (key === 'inputs') return 'INPUTS';
  return NEGATED_FLAGS.has(key) ? `--no-${kebab}` : `--${kebab}`;
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

const TYPE_NAMES: Record<string, string> = {
  int: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list (a JSON array, or a comma-separated string)',
  object: 'a JSON object',
};

/** The accepted keys closest to an unknown one (flag spelling, case, or a small typo). */
function closestKeys(key: string): string[] {
  const plain = (name: string) => name.toLowerCase().replace(/[-_]/g, '');
  const wanted = plain(key);
  return RUN_CONFIG_KEYS.filter((name) => {
    const candidate = plain(name);
    return candidate === wanted || candidate.startsWith(wanted) || wanted.startsWith(candidate);
  });
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string[] {
  const got = valueAt(input, issue.path);
  const at = (path: readonly PropertyKey[]) => {
    const key = String(path[0]);
    const jsonPath = path
      .map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`))
      .join('');
    return `"${jsonPath.slice(1)}" (${flagOf(key)})`;
  };
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const near = closestKeys(key);
        return `unknown key "${key}"${near.length ? ` (did you mean ${near.map((name) => `"${name}"`).join(' or ')}?)` : ''}; accepted keys: ${RUN_CONFIG_KEYS.join(', ')}`;
      });
    case 'invalid_value':
      return [
        `${at(issue.path)}: expected one of ${issue.values.map((value) => shown(value)).join(', ')}, got ${shown(got)}`,
      ];
    case 'invalid_type':
      if (got === undefined) return [`${at(issue.path)}: required, and missing`];
      return [
        `${at(issue.path)}: expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${shown(got)}`,
      ];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const sign = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      const expected =
        issue.origin === 'string'
          ? 'a non-empty string'
          : issue.origin === 'array'
            ? `at least ${String(bound)} item(s)`
            : `a number ${sign} ${String(bound)}`;
      return [`${at(issue.path)}: expected ${expected}, got ${shown(got)}`];
    }
    default:
      return [`${at(issue.path)}: ${issue.message}${got === undefined ? '' : `, got ${shown(got)}`}`];
  }
}

/**
 * Validates a raw config (a parsed JSON file, or the flags merged over it) and fills in the defaults.
 * `source` names where it came from (the file, or "the command line") in the error.
 */
export function parseRunConfig(input: unknown, source: string): RunConfig {
  const parsed = runConfigSchema.safeParse(input);
  if (parsed.success) {
    const { data } = parsed;
    return {
      ...data,
      model: data.model ?? localModelName(data.llm[0]!),
      concurrency: data.concurrency ?? defaultConcurrency(data.llm),
    };
  }
  const problems = parsed.error.issues.flatMap((issue) => describeIssue(issue, input));
  const count = problems.length === 1 ? 'a problem' : `${problems.length} problems`;
  // The fix goes last, on its own line, after the list (a hint would be appended to the last problem).
  throw new MegadocsError(
    'BAD_CONFIG',
    `${count} in the run config:\n  ${problems.join('\n  ')}\n` +
      'Fix these keys in the config file, or pass the flags on the command line (see megadocs run --help)',
    { where: source },
  );
}

/** Reads a JSON config file; a syntax error names the file and quotes the place. */
export async function readRunConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new MegadocsError('BAD_CONFIG', `cannot read the config file (${messageOf(error)})`, {
      where: path,
      hint: 'Check the path given to --config',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new MegadocsError('BAD_CONFIG', `the config file is not valid JSON (${messageOf(error)})`, {
      where: path,
      hint: 'A config is one JSON object whose keys are the long flags of megadocs run in camelCase',
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MegadocsError('BAD_CONFIG', `the config file holds ${shown(value)}, not a JSON object`, {
      where: path,
      hint: 'Write one JSON object, e.g. {"inputs": ["data.jsonl"], "out": "out", "llm": ["http://host:8000/v1"], "model": "m"}',
    });
  }
  return value as Record<string, unknown>;
}
