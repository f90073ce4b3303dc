// The configs of `megadocs pack`, `generate` and `run`: objects keyed by the commands' long flags in camelCase,
// checked with zod from one definition per field, defaults filled in; config-issues.ts words the problems.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ASSEMBLE_MODES } from './assemble/index.js';
import {
  isLocalLlm,
  LOCAL_DEFAULT_CONCURRENCY,
  localModelName,
  parseLocalSpec,
} from './backends/local-model.js';
import type { ZstdEngineChoice } from './codecs/zstd.js';
import { type ConfigCommand, configError, shown } from './config-issues.js';
import { MegadocsError, messageOf } from './errors.js';
import { LONG_DOCS_MODES } from './generate/long-docs.js';
import { BUILT_IN_RECIPES, DEFAULT_GENERATIONS } from './generate/recipes/index.js';
import type { TokenizerDownloadOptions } from './hub/tokenizer-download.js';
import { MAX_SEQ_LEN, TAIL_MODES } from './pack.js';
import { checkHashes } from './sinks/hashes.js';
import { parseCompression } from './sinks/mds.js';
import { TOKEN_DTYPES } from './sinks/token-dtype.js';
import { checkTokenizerSpec } from './tokenize/encoders.js';
import type { CacheDir } from './tokenize/table-cache.js';
import { absoluteTokenizerSpec } from './tokenize/tokenizer-identity.js';

export { flagOf } from './config-issues.js';

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

// The fields, each defined once; the commands' schemas below are made of them.
/** What goes in and where the run directory is. */
const jobFields = {
  inputs: z.array(z.string().min(1)).min(1),
  out: z.string().min(1),
  overwrite: z.boolean().default(false),
};
/** How input records become documents (flat in run's config, `record` in pack's and generate's). */
const recordFields = {
  textField: z.string().min(1).default('text'),
  idField: z.string().min(1).default('id'),
  onError: z.enum(['fail', 'skip']).default('fail'),
};
/** This worker among worldSize (each reads its share of the input shards into OUT/rank-NNNNN/). */
const rankFields = { rank: wholeNumber(0).optional(), worldSize: wholeNumber(1).optional() };
/** The servers and how requests go (the generate command's flags). */
const llmFields = {
  llm: list(serverUrl, 1),
  /** A `local:` model is named after its file; servers are asked (GET /v1/models) when it is not given. */
  model: z.string().min(1).optional(),
  threads: wholeNumber(1).optional(),
  api: z.enum(['chat', 'completions']).default('chat'),
  apiKeyEnv: z.string().min(1).default('OPENAI_API_KEY'),
  /** `auto` (the servers' default): a limit per endpoint from its load; N: at most N in flight over all. */
  concurrency: z
    .union([wholeNumber(1), z.literal('auto')], { error: 'expected a whole number of at least 1, or "auto"' })
    .optional(),
  /** The cap of `auto` over all endpoints (default 1024). */
  maxConcurrency: wholeNumber(1).optional(),
  /** Requests and tokens per minute, per endpoint (hosted APIs; their x-ratelimit headers are read too). */
  rpm: z.number().positive().optional(),
  tpm: z.number().positive().optional(),
  /** Bytes of finished documents held for output order behind a slower one (the engine's default: 256 MiB). */
  reorderBuffer: wholeNumber(1).optional(),
  maxRetries: wholeNumber(0).default(8),
  /** Replace a generating run of other options in --out, replaying every answer its journal holds. */
  reuseJournal: z.boolean().default(false),
  /** Seconds requests wait for a server while none answers (loading a model, restarting); 0: give up at once. */
  waitForServer: z.number().min(0).max(86_400).default(600),
  /** The share of documents that may lose generations to failed requests; above it the run ends incomplete. */
  maxFailures: z.number().min(0).max(1).default(0.01),
  /** Budgets: no new document once the kept ones' completion tokens (or their count) reach it; resumable. */
  maxOutputTokens: wholeNumber(1).optional(),
  maxDocuments: wholeNumber(1).optional(),
};
/** Seconds per attempt (`--timeout`: run's key `timeout`, generate's `timeoutSeconds`). */
const timeout = z.number().min(0.001).max(86_400).default(600);
/** What decides the generations. */
const recipeFields = {
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
  /** Tokens per request, prompt and output; default what the backend reports (vLLM's max_model_len). */
  contextSize: wholeNumber(1).optional(),
  /** Counts the input budget; default the local model's own tokenizer, or one token per byte for a server. */
  generatorTokenizer: z.string().min(1).transform(absoluteTokenizerSpec).optional(),
  /** A document over the input budget: cut into segments of whole lines, truncated, or skipped. */
  longDocs: z.enum(LONG_DOCS_MODES).default('segment'),
};
/** A `tiktoken:PATH` is made absolute, so megadocs.json names the file whatever directory reads it. */
const tokenizer = z.string().default('o200k_base').transform(absoluteTokenizerSpec);
/** Tokenizing (the pack command's flags). */
const tokenizeFields = {
  tokenizer,
  workers: wholeNumber(0).default(() => availableParallelism()),
  eos: z.boolean().default(true),
  /** Absent: as the tokenizer's model does by default (tokenizer_config.json). */
  bos: z.boolean().optional(),
  /** The EOS token instead of the model's (a special or added token of the tokenizer). */
  eosToken: z.string().min(1).optional(),
};
/** Packing, and the MDS sink. */
const packFields = {
  seqLen: wholeNumber(1).max(MAX_SEQ_LEN).default(4096),
  tail: z.enum(TAIL_MODES).default('drop'),
  boundaries: z.boolean().default(false),
  hashes: list(z.string().min(1)).default(['sha1']),
  /** `--format megatron`: the pair OUT/PREFIX.bin + OUT/PREFIX.idx. */
  prefix: z.string().default('megadocs'),
  /** The dtype of the written token ids; absent: the narrowest that holds the vocabulary. */
  tokenDtype: z.enum(TOKEN_DTYPES).optional(),
};
/** Every sink's shards. */
const shardFields = {
  compression: z.string().default('zstd:3'),
  shardSize: wholeNumber(1).default(1 << 26),
};
export const OUTPUT_FORMATS = ['mds', 'jsonl', 'megatron', 'memmap'] as const;
/** The formats `megadocs run` writes: token datasets only. */
export const RUN_OUTPUT_FORMATS = ['mds', 'megatron', 'memmap'] as const;

/** Megatron stores whole documents and packs at training time: packing options have nothing to act on. */
const megatronRule: Rule<{ format: string; boundaries: boolean; tail: string; tokenDtype?: string }> = (
  config,
  problem,
) => {
  if (config.format !== 'megatron') return;
  if (config.tokenDtype === 'uint32')
    problem('tokenDtype', "Megatron's .idx has no uint32 dtype code: use --token-dtype int32 (or uint16)");
  if (config.boundaries)
    problem(
      'boundaries',
      'a Megatron entry is a whole document, not a packed sequence: leave out --boundaries',
    );
  if (config.tail !== 'drop')
    problem(
      'tail',
      'Megatron packs at training time, so there is no last partial sequence: leave out --tail',
    );
};

/** A memmap is read as rows of exactly seq_len tokens, with the document spans in its own files. */
const memmapRule: Rule<{ format: string; boundaries: boolean; tail: string }> = (config, problem) => {
  if (config.format !== 'memmap') return;
  if (config.boundaries)
    problem('boundaries', 'a memmap has no boundaries column (part-NNNNN.csv.gz holds the document spans)');
  if (config.tail === 'keep')
    problem('tail', 'a memmap holds whole sequences of --seq-len tokens: use --tail drop or pad');
};

// The checks across fields, and those made by the library's own validators, run once the fields are valid.
type Problem = (path: string | PropertyKey[], message: string) => void;
type Rule<C> = (config: C, problem: Problem) => void;

function applyRules<C>(config: C, context: z.core.$RefinementCtx<C>, all: ReadonlyArray<Rule<C>>): void {
  const problem: Problem = (path, message) =>
    context.addIssue({ code: 'custom', path: typeof path === 'string' ? [path] : path, message });
  for (const rule of all) rule(config, problem);
}

/** Reports what a library validator throws (the same check the stage itself makes, made before any work). */
function checked(problem: Problem, key: string, check: () => unknown): void {
  try {
    check();
  } catch (error) {
    // The problem already names the key: not twice.
    problem(key, messageOf(error).replace(`${key}: `, ''));
  }
}

const tokenizerRule: Rule<{ tokenizer: string }> = (config, problem) =>
  checked(problem, 'tokenizer', () => checkTokenizerSpec(config.tokenizer));
const generatorTokenizerRule: Rule<{ generatorTokenizer?: string }> = (config, problem) => {
  if (config.generatorTokenizer !== undefined)
    checked(problem, 'generatorTokenizer', () => checkTokenizerSpec(config.generatorTokenizer!));
};
const compressionRule: Rule<{ compression: string }> = (config, problem) =>
  checked(problem, 'compression', () => parseCompression(config.compression));
const hashesRule: Rule<{ hashes: string[] }> = (config, problem) =>
  checked(problem, 'hashes', () => checkHashes(config.hashes));

/** Without --model, servers are asked what they serve (GET /v1/models) when the run starts. */
const llmRule: Rule<{ llm: string[] }> = (config, problem) => {
  // No server at all is already reported (a list too short does not stop the checks).
  if (config.llm.length === 0) return;
  if (config.llm.some(isLocalLlm) && config.llm.length > 1) {
    problem('llm', 'a local: model runs alone: give one local:MODEL.gguf, or server URLs only');
  }
  checked(problem, 'llm', () => config.llm.filter(isLocalLlm).forEach(parseLocalSpec));
};

function rankRule(problem: Problem, path: PropertyKey[], rank?: number, worldSize?: number): void {
  if (rank !== undefined && (worldSize === undefined || rank >= worldSize)) {
    problem(path, `expected a rank below worldSize (${worldSize ?? 'not given'})`);
  }
}

/** A document with fewer than minGenerations makes no synthetic one: more than are asked pays for nothing. */
const minGenerationsRule: Rule<{ recipe: string; generations?: number; minGenerations: number }> = (
  config,
  problem,
) => {
  const builtIn = (BUILT_IN_RECIPES as readonly string[]).includes(config.recipe);
  const asked =
    config.generations ??
    (builtIn ? DEFAULT_GENERATIONS[config.recipe as (typeof BUILT_IN_RECIPES)[number]] : undefined);
  if (asked === undefined || config.minGenerations <= asked) return;
  const given = config.generations === undefined ? `the ${config.recipe} recipe's default` : '--generations';
  problem(
    'minGenerations',
    `expected at most ${asked}, the generations asked per document (${given}): with more, every document ` +
      'would be dropped after its requests are paid for',
  );
};

// The commands' schemas.
export const packConfigSchema = z
  .strictObject({
    ...jobFields,
    record: z.strictObject(recordFields).prefault({}),
    ...tokenizeFields,
    ...packFields,
    format: z.enum(OUTPUT_FORMATS).default('mds'),
    ...shardFields,
    /** This worker's share of the inputs; with worldSize > 1 the output goes to OUT/rank-NNNNN/. */
    rank: z.object(rankFields).required().optional(),
  })
  .superRefine((config, context) =>
    applyRules(config, context, [
      tokenizerRule,
      compressionRule,
      hashesRule,
      megatronRule,
      memmapRule,
      (_, problem) => rankRule(problem, ['rank', 'rank'], config.rank?.rank, config.rank?.worldSize),
    ]),
  );

export const generateConfigSchema = z
  .strictObject({
    ...jobFields,
    record: z.strictObject(recordFields).prefault({}),
    ...llmFields,
    timeoutSeconds: timeout,
    ...recipeFields,
    /** For stretch split points and token limits. */
    tokenizer,
    ...shardFields,
  })
  .superRefine((config, context) =>
    applyRules(config, context, [llmRule, tokenizerRule, generatorTokenizerRule, compressionRule]),
  );

export const runConfigSchema = z
  .strictObject({
    ...jobFields,
    ...recordFields,
    ...rankFields,
    /** hf:// inputs: the dataset subset (config) and its split (`--subset`, `--split`), instead of named files. */
    subset: z.string().min(1).optional(),
    split: z.string().min(1).optional(),
    ...llmFields,
    timeout,
    ...recipeFields,
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
    // Tokenize, pack and the MDS sink (the pack command's flags; run writes token shards only).
    ...tokenizeFields,
    ...packFields,
    format: z.string().default('mds'),
    ...shardFields,
  })
  .superRefine((config, context) =>
    applyRules(config, context, [
      (_, problem) => {
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
        rankRule(problem, ['rank'], config.rank, config.worldSize);
        if (!(RUN_OUTPUT_FORMATS as readonly string[]).includes(config.format)) {
          problem(
            'format',
            `expected ${RUN_OUTPUT_FORMATS.map((name) => `"${name}"`).join(' or ')}: megadocs run writes tokens (\`megadocs generate\` writes text)`,
          );
        }
      },
      llmRule,
      minGenerationsRule,
      tokenizerRule,
      generatorTokenizerRule,
      compressionRule,
      hashesRule,
      megatronRule,
      memmapRule,
    ]),
  );

/**
 * A checked config's servers and requests: `model` (a local model's file name by default; for servers, undefined
 * asks them), and `concurrency`.
 */
type WithLlmDefaults<C> = Omit<C, 'model' | 'concurrency'> & { model?: string; concurrency: number | 'auto' };

/** A checked pack config with every default filled in (what runPack works with). */
export type PackConfig = z.output<typeof packConfigSchema>;
/** What a caller may pass to parsePackConfig: the required keys, and any others to override the defaults. */
export type PackConfigInput = z.input<typeof packConfigSchema>;
export type GenerateConfig = WithLlmDefaults<z.output<typeof generateConfigSchema>>;
export type GenerateConfigInput = z.input<typeof generateConfigSchema>;
export type RunConfig = WithLlmDefaults<z.output<typeof runConfigSchema>>;

/**
 * How the work is done, beside any config (no key, not in the run identity): where the token tables are cached and
 * which zstd compressor runs. The CLI sets them from the environment (bin/environment.ts).
 */
export interface RuntimeOptions {
  /** megadocs's cache directory (token tables in its tokenizers/ folder); false: no cache; default ~/.cache/megadocs. */
  cacheDir?: CacheDir;
  /** The zstd compressor: native (libzstd when zstd-napi loads, else zstd-codec; the default) or zstd-codec. */
  zstdEngine?: ZstdEngineChoice;
  /** Where `--tokenizer hf:ORG/REPO` is downloaded from and to (the Hub's endpoint and token, the HF cache). */
  hubTokenizer?: TokenizerDownloadOptions;
}

/**
 * Config keys that decide how a run goes (servers, key, speed, patience, failure budget, where it writes), never
 * its output bytes: left out of the run identity, so changing one continues the same run. The spending budgets
 * cut the output at a document, but a rerun with another budget continues the same run from its journal.
 */
const HOW_KEYS: ReadonlySet<string> = new Set([
  'llm',
  'apiKeyEnv',
  'concurrency',
  'maxConcurrency',
  'rpm',
  'tpm',
  'reorderBuffer',
  'maxRetries',
  'maxFailures',
  'maxOutputTokens',
  'maxDocuments',
  'waitForServer',
  'timeout',
  'timeoutSeconds',
  'threads',
  'workers',
  'overwrite',
  'reuseJournal',
  'out',
]);

/** The options of a config that decide its output bytes (the run identity, before inputs and transforms). */
export function outputOptions(config: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([key]) => !HOW_KEYS.has(key)));
}

/** The keys each config may have: the long flags of the command, camelCased (plus `inputs`). */
export const PACK_CONFIG_KEYS: readonly string[] = Object.keys(packConfigSchema.shape);
export const GENERATE_CONFIG_KEYS: readonly string[] = Object.keys(generateConfigSchema.shape);
export const RUN_CONFIG_KEYS: readonly string[] = Object.keys(runConfigSchema.shape);
/** The keys of pack's and generate's `record` (`--text-field`, `--id-field`, `--on-error`). */
export const RECORD_KEYS: readonly string[] = Object.keys(recordFields);

// The commands, as their errors name them.
const flagsFix = (name: string) =>
  `Fix these keys of the config, or pass the flags on the command line (see megadocs ${name} --help)`;
const PACK: ConfigCommand = {
  name: 'pack',
  keys: PACK_CONFIG_KEYS,
  groups: { record: RECORD_KEYS, rank: Object.keys(rankFields) },
  fix: flagsFix('pack'),
};
const GENERATE: ConfigCommand = {
  name: 'generate',
  keys: GENERATE_CONFIG_KEYS,
  groups: { record: RECORD_KEYS },
  fix: flagsFix('generate'),
};
const RUN: ConfigCommand = {
  name: 'run',
  keys: RUN_CONFIG_KEYS,
  groups: {},
  fix: 'Fix these keys in the config file, or pass the flags on the command line (see megadocs run --help)',
};

/** The checked config, or a BAD_CONFIG error listing every problem; `source` names where it came from. */
function parseWith<S extends z.ZodType>(
  schema: S,
  command: ConfigCommand,
  input: unknown,
  source: string,
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw configError(parsed.error.issues, input, command, source);
}

/** `auto` (the default) for servers; a `local:` model runs a fixed number of sequences (for `auto` too: its default). */
function concurrencyFor(llm: string[], given: number | 'auto' | undefined): number | 'auto' {
  const local = llm.length > 0 && llm.every(isLocalLlm);
  if (!local) return given ?? 'auto';
  return typeof given === 'number' ? given : LOCAL_DEFAULT_CONCURRENCY;
}

function withLlmDefaults<C extends { llm: string[]; model?: string; concurrency?: number | 'auto' }>(
  config: C,
): WithLlmDefaults<C> {
  return {
    ...config,
    model: config.model ?? (isLocalLlm(config.llm[0]!) ? localModelName(config.llm[0]!) : undefined),
    concurrency: concurrencyFor(config.llm, config.concurrency),
  };
}

/**
 * Validates a raw `megadocs pack` config (the flags, or a library caller's object) and fills in the defaults.
 * `source` names where it came from (e.g. "the command line") in the error.
 */
export function parsePackConfig(input: unknown, source: string): PackConfig {
  return parseWith(packConfigSchema, PACK, input, source);
}

/** Validates a raw `megadocs generate` config and fills in the defaults (as parsePackConfig). */
export function parseGenerateConfig(input: unknown, source: string): GenerateConfig {
  return withLlmDefaults(parseWith(generateConfigSchema, GENERATE, input, source));
}

/**
 * Validates a raw `megadocs run` config (a parsed JSON file, or the flags merged over it) and fills in the
 * defaults. `source` names where it came from (the file, or "the command line") in the error.
 */
export function parseRunConfig(input: unknown, source: string): RunConfig {
  return withLlmDefaults(parseWith(runConfigSchema, RUN, input, source));
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
