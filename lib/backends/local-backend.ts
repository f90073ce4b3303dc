// The LlmBackend that runs a GGUF model in-process through node-llama-cpp (an optional dependency, imported only
// here and only when asked for): C parallel sequences in one context, each of a request's n samples on its own.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import type {
  ChatHistoryItem,
  ChatWrapper,
  Llama,
  LlamaChat,
  LlamaCompletion,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
} from 'node-llama-cpp';
import { MegadocsError, messageOf } from '../errors.js';
import type { TextTokenizer } from '../generate/input.js';
import { Limiter } from '../generate/limiter.js';
import { createGenerateStats, type GenerateStats, recordLatency } from '../generate/stats.js';
import type { HubOptions } from '../hub/client.js';
import type { Usage } from '../types.js';
import {
  type ChatMessage,
  type CompletionChoice,
  type CompletionRequest,
  type CompletionResult,
  type LlmBackend,
  type PromptFormat,
  RequestFailedError,
} from './backend.js';
import { type ModelDownloadProgress, resolveLocalModel } from './local-model.js';

type NodeLlamaCpp = typeof import('node-llama-cpp');

/** Tokens per sequence (prompt + output) unless the model was trained on fewer. */
export const DEFAULT_CONTEXT_SIZE = 4096;
/** Most threads picked by default: small models stop scaling well past this (bench/local.ts). */
const MAX_DEFAULT_THREADS = 8;

export interface LocalBackendOptions {
  /** `local:PATH.gguf` or `local:hf:ORG/REPO[@REV]/FILE.gguf` (`--llm`). */
  spec: string;
  /** Parallel sequences in the one context (`--concurrency`). */
  concurrency: number;
  /** `chat`: messages through the model's chat template; `text`: the plain prompt (`--api completions`). */
  format: PromptFormat;
  /** CPU threads (`--threads`); default defaultThreads(cores). */
  threads?: number;
  /** Logical CPU cores, for the default thread count; default: os.availableParallelism(). */
  cores?: number;
  /** Tokens per sequence; default min(training context, DEFAULT_CONTEXT_SIZE). */
  contextSize?: number;
  /** `auto` offloads to a GPU when node-llama-cpp finds one (CUDA, Vulkan, Metal); false: CPU only. */
  gpu?: 'auto' | false;
  /** Hub access and cache for `local:hf:` models (values the CLI read from HF_*). */
  hub?: HubOptions;
  cacheDir?: string;
  onDownload?: (progress: ModelDownloadProgress) => void;
  /** llama.cpp's warnings (errors go into the thrown MegadocsError instead). */
  onWarning?: (message: string) => void;
  stats?: GenerateStats;
  signal?: AbortSignal;
}

/** What a command passes for `local:` models besides its config: Hub access, cache, cores, what to show. */
export type LocalRunOptions = Pick<
  LocalBackendOptions,
  'hub' | 'cacheDir' | 'cores' | 'onDownload' | 'onWarning'
>;

/**
 * Threads by default: one core is left to the pipeline (tokenizer workers, I/O), because llama.cpp's threads
 * spin-wait for each other and a descheduled one stalls them all. On the shared 2-core development machine,
 * 1 thread wrote 1,000-2,300 tok/s on stories260K and 2 threads 2-200 tok/s (bench/local.ts).
 */
export function defaultThreads(cores: number): number {
  return Math.max(1, Math.min(cores - 1, MAX_DEFAULT_THREADS));
}

/** The seed of sample `index` of a request: the request's own seed first, then seeds derived from it. */
export function sampleSeed(seed: number, index: number): number {
  if (index === 0) return seed;
  return createHash('sha256').update(`${seed}\u0000${index}`).digest().readUInt32BE(0) & 0x7fffffff;
}

/** Imports node-llama-cpp; when it is not installed, the error says how to install it. */
async function loadNodeLlamaCpp(where: string): Promise<NodeLlamaCpp> {
  try {
    return await import('node-llama-cpp');
  } catch (error) {
    const missing =
      (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' &&
      messageOf(error).includes("'node-llama-cpp'");
    throw new MegadocsError(
      'BAD_OPTION',
      missing
        ? 'the embedded LLM needs node-llama-cpp, which is not installed'
        : `node-llama-cpp could not be loaded (${messageOf(error)})`,
      {
        where,
        hint: missing
          ? 'Install it with `npm install node-llama-cpp` where megadocs is installed (`npm install -g node-llama-cpp` for a global megadocs), or point --llm at an OpenAI-compatible server'
          : 'Reinstall it with `npm install node-llama-cpp`',
        cause: error,
      },
    );
  }
}

/** Loads the library, the model (downloading a Hub model first) and a context of `concurrency` sequences. */
export function createLocalBackend(options: LocalBackendOptions): Promise<LocalBackend> {
  return LocalBackend.open(options);
}

/**
 * Fails with the file's name and sizes when its header describes more tensor bytes than it holds (a cut
 * download): llama.cpp only logs the reason and rejects with "Failed to load model".
 */
async function requireCompleteModel(lib: NodeLlamaCpp, llama: Llama, file: string): Promise<void> {
  const damaged = (problem: string, cause?: unknown) =>
    new MegadocsError('CORRUPT', problem, {
      where: file,
      hint: 'Download the model again (a Hub download is checked and resumed), or pick another file',
      cause,
    });
  let needed: number;
  try {
    const info = await lib.readGgufFileInfo(file, { readTensorInfo: true });
    if (info.splicedParts > 1 || !info.tensorInfo?.length) return;
    const insights = await lib.GgufInsights.from(info, llama);
    needed = Math.min(...info.tensorInfo.map((tensor) => Number(tensor.fileOffset))) + insights.modelSize;
  } catch (error) {
    throw damaged(`not a readable GGUF model (${messageOf(error)})`, error);
  }
  const { size } = await stat(file);
  if (size < needed) throw damaged(`the file is truncated: it has ${size} bytes, its tensors need ${needed}`);
}

interface LoadedModel {
  lib: NodeLlamaCpp;
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  /** What results report as `model`. */
  name: string;
  concurrency: number;
  format: PromptFormat;
  stats?: GenerateStats;
}

interface Sample {
  choice: CompletionChoice;
  usage: Usage;
}

/** One sequence of the context with the evaluator that generates on it (chat template or plain text). */
type Slot =
  | { sequence: LlamaContextSequence; chat: LlamaChat; completion?: undefined }
  | { sequence: LlamaContextSequence; chat?: undefined; completion: LlamaCompletion };

interface SampleSettings {
  request: CompletionRequest;
  maxTokens: number;
  grammar?: LlamaGrammar;
  seed: number;
  signal?: AbortSignal;
}

export class LocalBackend implements LlmBackend {
  readonly concurrency: number;
  readonly format: PromptFormat;
  readonly modelName: string;
  private readonly slots: Limiter;
  private readonly stats: GenerateStats;
  private readonly chatWrapper: ChatWrapper;
  private jsonGrammar?: Promise<LlamaGrammar>;
  /** Sequences made so far and not in use (at most `concurrency` are ever made). */
  private readonly idle: Slot[] = [];

  /** See createLocalBackend. */
  static async open(options: LocalBackendOptions): Promise<LocalBackend> {
    const where = `--llm ${options.spec}`;
    const lib = await loadNodeLlamaCpp(where);
    const resolved = await resolveLocalModel(options.spec, {
      hub: options.hub,
      cacheDir: options.cacheDir,
      onProgress: options.onDownload,
      signal: options.signal,
    });
    const threads = options.threads ?? defaultThreads(options.cores ?? availableParallelism());
    const errors: string[] = [];
    const llama = await lib
      .getLlama({
        gpu: options.gpu ?? 'auto',
        build: 'never',
        maxThreads: threads,
        logger: (level, message) => {
          if (level === lib.LlamaLogLevel.error || level === lib.LlamaLogLevel.fatal)
            errors.push(message.trim());
          else if (level === lib.LlamaLogLevel.warn) options.onWarning?.(message.trim());
        },
      })
      .catch((error: unknown) => {
        throw new MegadocsError(
          'LLM',
          `node-llama-cpp has no working llama.cpp binary here (${messageOf(error)})`,
          {
            where,
            hint: 'Reinstall node-llama-cpp without --omit=optional, so that its prebuilt binary for this platform is installed',
            cause: error,
          },
        );
      });
    try {
      await requireCompleteModel(lib, llama, resolved.path);
      const model = await llama.loadModel({ modelPath: resolved.path }).catch((error: unknown) => {
        const detail = errors.length ? errors.join('; ') : messageOf(error);
        throw new MegadocsError('CORRUPT', `cannot load the model (${detail})`, {
          where: resolved.path,
          hint: 'The file is not a complete GGUF model (a truncated download?): download it again, or pick another file',
          cause: error,
        });
      });
      const contextSize = options.contextSize ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_SIZE);
      const context = await model
        .createContext({ sequences: options.concurrency, contextSize, threads })
        .catch(async (error: unknown) => {
          await model.dispose();
          throw new MegadocsError(
            'LLM',
            `cannot create a context of ${contextSize} tokens x ${options.concurrency} sequences (${messageOf(error)})`,
            {
              where,
              hint: 'Lower --concurrency (each parallel sequence holds its own context)',
              cause: error,
            },
          );
        });
      return new LocalBackend({ lib, llama, model, context, name: resolved.name, ...options });
    } catch (error) {
      await llama.dispose();
      throw error;
    }
  }

  /** Private: node-llama-cpp's types stay out of the public declarations (it may not be installed). */
  private constructor(private readonly loaded: LoadedModel) {
    this.concurrency = loaded.concurrency;
    this.format = loaded.format;
    this.modelName = loaded.name;
    this.slots = new Limiter(loaded.concurrency);
    this.stats = loaded.stats ?? createGenerateStats();
    this.chatWrapper = loaded.lib.resolveChatWrapper(loaded.model);
  }

  get model(): string {
    return this.modelName;
  }

  /** The model's own tokenizer (counts the input budget exactly). */
  get tokenizer(): TextTokenizer {
    const { model } = this.loaded;
    return {
      encode: (text) => [...model.tokenize(text, false)],
      decode: (ids) =>
        model.detokenize(Array.from(ids) as unknown as Parameters<LlamaModel['detokenize']>[0]),
    };
  }

  /** Tokens each sequence holds: prompt and output together. */
  get contextSize(): number {
    return this.loaded.context.contextSize;
  }

  async complete(request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult> {
    const started = performance.now();
    this.stats.requests.sent += 1;
    this.stats.requests.inFlight += 1;
    try {
      const promptTokens = this.promptLength(request);
      const room = this.contextSize - promptTokens;
      if (room < 1) {
        throw new RequestFailedError(
          `the prompt has ${promptTokens} tokens and the context holds ${this.contextSize}`,
          'context_length',
          true,
          request.label,
        );
      }
      const grammar = request.responseFormat === 'json_object' ? await this.grammarForJson() : undefined;
      const maxTokens = Math.min(request.maxTokens ?? room, room);
      const samples = await Promise.all(
        Array.from({ length: request.n }, (_v, index) =>
          this.sample({ request, maxTokens, grammar, seed: sampleSeed(request.seed, index), signal }),
        ),
      );
      recordLatency(this.stats.latency, performance.now() - started);
      return {
        choices: samples.map((sample) => sample.choice),
        usage: {
          promptTokens: samples[0]?.usage.promptTokens ?? promptTokens,
          completionTokens: samples.reduce((sum, sample) => sum + sample.usage.completionTokens, 0),
        },
        model: this.modelName,
      };
    } finally {
      this.stats.requests.inFlight -= 1;
    }
  }

  async close(): Promise<void> {
    await this.loaded.context.dispose();
    await this.loaded.model.dispose();
    await this.loaded.llama.dispose();
  }

  /** The prompt's length in tokens as the model will see it (chat template or plain text with BOS). */
  private promptLength(request: CompletionRequest): number {
    const { model } = this.loaded;
    if (this.format === 'chat') {
      const state = this.chatWrapper.generateContextState({ chatHistory: chatHistoryOf(request) });
      return state.contextText.tokenize(model.tokenizer).length;
    }
    return model.tokenize(promptOf(request), false, 'trimLeadingSpace').length + 1;
  }

  private grammarForJson(): Promise<LlamaGrammar> {
    this.jsonGrammar ??= this.loaded.llama.getGrammarFor('json');
    return this.jsonGrammar;
  }

  /** One sample on a free sequence of the context, its history cleared before it goes back to the pool. */
  private async sample(settings: SampleSettings): Promise<Sample> {
    const release = await this.slots.acquire();
    const slot = this.idle.pop() ?? this.newSlot();
    try {
      settings.signal?.throwIfAborted();
      const before = slot.sequence.tokenMeter.getState();
      const generation = {
        maxTokens: settings.maxTokens,
        temperature: settings.request.temperature ?? 1,
        topP: settings.request.topP,
        seed: settings.seed,
        grammar: settings.grammar,
        signal: settings.signal,
        repeatPenalty: false as const,
      };
      const { response, metadata } = slot.chat
        ? await slot.chat.generateResponse(chatHistoryOf(settings.request), generation)
        : await slot.completion.generateCompletionWithMeta(promptOf(settings.request), {
            ...generation,
            disableContextShift: true,
          });
      const after = slot.sequence.tokenMeter.getState();
      return {
        choice: { text: response, finishReason: metadata.stopReason === 'maxTokens' ? 'length' : 'stop' },
        usage: {
          promptTokens: after.usedInputTokens - before.usedInputTokens,
          completionTokens: after.usedOutputTokens - before.usedOutputTokens,
        },
      };
    } finally {
      await slot.sequence.clearHistory();
      this.idle.push(slot);
      release();
    }
  }

  private newSlot(): Slot {
    const { lib, context } = this.loaded;
    const sequence = context.getSequence();
    return this.format === 'chat'
      ? { sequence, chat: new lib.LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper }) }
      : { sequence, completion: new lib.LlamaCompletion({ contextSequence: sequence }) };
  }
}

function chatHistoryOf(request: CompletionRequest): ChatHistoryItem[] {
  const toItem = (message: ChatMessage): ChatHistoryItem =>
    message.role === 'assistant'
      ? { type: 'model', response: [message.content] }
      : { type: message.role, text: message.content };
  return [...(request.messages ?? []).map(toItem), { type: 'model', response: [] }];
}

function promptOf(request: CompletionRequest): string {
  if (request.prompt === undefined) throw new Error(`${request.label}: a text backend needs the prompt text`);
  return request.prompt;
}
