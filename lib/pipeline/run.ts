// `megadocs run` as a library call: source -> generate -> assemble -> tokenize -> pack (per stream, parked
// on disk) -> mix and shuffle -> MDS sink, in one process and one run directory that a rerun continues.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import _ from 'highland';
import { assembleStage, type Megadoc } from '../assemble/index.js';
import type { RunConfig } from '../config.js';
import { MegadocsError, messageOf } from '../errors.js';
import { defaultWindow, generateStage } from '../generate/engine.js';
import { HttpBackend } from '../generate/http-backend.js';
import { Journal } from '../generate/journal.js';
import { recipeNeedsTokenizer, resolveRecipe } from '../generate/recipes/index.js';
import { DEFAULT_RETRY_POLICY } from '../generate/retry.js';
import { statsSnapshot } from '../generate/stats.js';
import { loadTemplates } from '../generate/templates/index.js';
import {
  mixedOrder,
  mixtureSpec,
  orderedSequences,
  planMix,
  type SequenceRef,
  STREAM_NAMES,
  type StreamName,
  streamOrder,
} from '../mix.js';
import { packStage } from '../pack.js';
import { hashConfig, RunDir } from '../rundir.js';
import { mdsSink } from '../sinks/mds.js';
import { expandInputs } from '../sources/inputs.js';
import { readDocs } from '../sources/read.js';
import { type SequenceSpillReader, SequenceSpillWriter } from '../spill.js';
import { toAsyncIterable } from '../stream.js';
import { type Encoder, loadEncoder } from '../tokenize/encoders.js';
import { tokenizeStage } from '../tokenize/stage.js';
import type { Doc, Sequence, Stage } from '../types.js';
import {
  newRunProgress,
  type RunProgress,
  type RunSummary,
  summarize,
  type WrittenDataset,
  type WrittenOutput,
} from './run-stats.js';

export { newRunProgress, type RunProgress, type RunSummary } from './run-stats.js';

/** Packed sequences wait here (OUT/spill/) until both streams are complete; removed when the run ends. */
export const SPILL_DIR = 'spill';
export const MIXTURE_FILE = 'mixture.json';

export interface RunOptions {
  /** Read from the environment by the caller; sent as a bearer token, never stored. */
  apiKey?: string;
  progress?: RunProgress;
  /** Aborting stops the requests in flight and marks the run interrupted; a rerun continues it. */
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
}

async function fileHash(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  } catch (error) {
    throw new MegadocsError('BAD_CONFIG', `cannot read ${path} (${messageOf(error)})`, { where: path });
  }
}

/** The options that decide the output bytes: not the servers, key, concurrency, retries, timeouts, workers. */
async function outputIdentity(config: RunConfig): Promise<Record<string, unknown>> {
  const {
    llm: _llm,
    apiKeyEnv: _apiKeyEnv,
    concurrency: _concurrency,
    maxRetries: _maxRetries,
    timeout: _timeout,
    workers: _workers,
    overwrite: _overwrite,
    out: _out,
    ...identity
  } = config;
  const recipeFile = config.recipe.toLowerCase().endsWith('.json')
    ? await fileHash(config.recipe)
    : undefined;
  return { ...identity, recipeFile, templatesFile: await fileHash(config.templates) };
}

function abortion(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal?.addEventListener('abort', () =>
      reject(
        new MegadocsError('INTERRUPTED', 'interrupted', { hint: 'Run the same command again to continue' }),
      ),
    );
  });
}

/** The streams a tokenized part goes to, written before the first `/` of its id. */
type PartStreams = StreamName | 'both';

function part(streams: PartStreams, megadoc: Megadoc, index: number, text: string): Doc {
  return { id: `${streams}/${megadoc.id}/${index}`, text };
}

/**
 * Every part of every megadoc as one document to tokenize, its id naming the stream(s) it belongs to. An
 * original that sits unchanged inside the megadoc right after it (stitch with an EOS separator) is
 * tokenized once and goes to both streams; each stream still sees its parts in order.
 */
function partsToTokenize(): Stage<Megadoc, Doc> {
  let held: Megadoc | undefined;
  return (input) =>
    input.consume<Doc>((error, item, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      const release = () => {
        if (held) push(null, part('real', held, 0, held.parts[0]!));
        held = undefined;
      };
      if (_.isNil(item)) {
        release();
        push(null, _.nil);
        return;
      }
      const megadoc = item as Megadoc;
      if (megadoc.stream === 'real') {
        release();
        held = megadoc;
      } else {
        const shared = held?.id === megadoc.id ? megadoc.parts.indexOf(held.parts[0]!) : -1;
        if (shared < 0) release();
        held = undefined;
        megadoc.parts.forEach((text, index) => {
          push(null, part(index === shared ? 'both' : 'synthetic', megadoc, index, text));
        });
      }
      next();
    });
}

export async function runMegadocs(config: RunConfig, run: RunOptions = {}): Promise<RunSummary> {
  const progress = run.progress ?? newRunProgress();
  const encoder = await loadEncoder(config.tokenizer);
  const templates = config.templates ? await loadTemplates(config.templates) : undefined;
  const recipe = await resolveRecipe({
    recipe: config.recipe,
    generations: config.generations,
    styles: config.styles,
    nPerRequest: config.nPerRequest,
    sampling: { temperature: config.temperature, topP: config.topP, maxTokens: config.maxTokens },
    templates,
    jsonMode: config.jsonMode,
  });
  const shards = await expandInputs(config.inputs);
  if (shards.every((shard) => shard.size !== undefined)) {
    progress.inputBytes = shards.reduce((sum, shard) => sum + (shard.size ?? 0), 0);
  }
  const identity = await outputIdentity(config);
  const runDir = await RunDir.open({
    dir: config.out,
    command: 'run',
    options: { ...config },
    identity,
    overwrite: config.overwrite,
  });
  const backend = new HttpBackend({
    urls: config.llm,
    api: config.api,
    model: config.model,
    apiKey: run.apiKey,
    concurrency: config.concurrency,
    timeoutMs: config.timeout * 1000,
    retry: { ...DEFAULT_RETRY_POLICY, maxRetries: config.maxRetries },
    stats: progress.generate,
  });
  const spillDir = join(config.out, SPILL_DIR);
  let journal: Journal | undefined;
  const spills: Partial<Record<StreamName, SequenceSpillReader>> = {};
  try {
    journal = await Journal.open({
      stateDir: runDir.stateDir,
      configHash: hashConfig(identity),
      window: defaultWindow(config.concurrency),
      onWarning: run.onWarning,
    });
    const megadocs = readDocs(shards, {
      textField: config.textField,
      idField: config.idField,
      onError: config.onError,
      stats: progress.source,
    })
      .through(
        generateStage({
          backend,
          recipe,
          model: config.model,
          seed: config.seed,
          onTruncated: config.onTruncated,
          maxInputTokens: config.maxInputTokens,
          codec: recipeNeedsTokenizer(recipe) || config.maxInputTokens ? encoder : undefined,
          journal,
          stats: progress.generate,
          signal: run.signal,
        }),
      )
      .through(
        assembleStage({
          mode: config.assemble,
          original: config.original,
          separator: config.separator,
          join: config.join,
          thoughtOpen: config.thoughtOpen,
          thoughtClose: config.thoughtClose,
          minGenerations: config.minGenerations,
          shuffleWindow: config.shuffleWindow,
          seed: config.shuffleSeed,
          stats: progress.assemble,
        }),
      );
    await mkdir(spillDir, { recursive: true });
    const streamSeconds = await timed(async () => {
      Object.assign(
        spills,
        await Promise.race([
          packToSpills(megadocs, config, encoder, spillDir, progress),
          abortion(run.signal),
        ]),
      );
    });
    const complete = spills as Record<StreamName, SequenceSpillReader>;
    let written: WrittenOutput | undefined;
    const writeSeconds = await timed(async () => {
      written = await Promise.race([writeOutput(complete, config, encoder, progress), abortion(run.signal)]);
    });
    await Promise.all(STREAM_NAMES.map((stream) => complete[stream].close()));
    await rm(spillDir, { recursive: true, force: true });
    const summary = summarize(progress, config, written!, { streamSeconds, writeSeconds });
    await runDir.complete(summary);
    return summary;
  } catch (error) {
    await runDir.stop(run.signal?.aborted ? 'interrupted' : 'failed', error, {
      generate: statsSnapshot(progress.generate),
      assemble: progress.assemble,
    });
    throw error;
  } finally {
    await Promise.allSettled(Object.values(spills).map((spill) => spill.close()));
    await journal?.close();
    await backend.close();
  }
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

/** Phase one: tokenize every part in order, pack each stream on its own, park the sequences on disk. */
async function packToSpills(
  megadocs: Highland.Stream<Megadoc>,
  config: RunConfig,
  encoder: Encoder,
  spillDir: string,
  progress: RunProgress,
): Promise<Record<StreamName, SequenceSpillReader>> {
  const writers = await Promise.all(
    STREAM_NAMES.map((stream) => SequenceSpillWriter.create(join(spillDir, stream))),
  );
  const tokenized = megadocs.through(partsToTokenize()).through(
    tokenizeStage({
      tokenizer: config.tokenizer,
      workers: config.workers,
      eos: config.eos,
      bos: config.bos,
    }),
  );
  // Both forks exist before either pulls, so each sees every document (highland forks move in lockstep).
  const branches = STREAM_NAMES.map((stream) =>
    tokenized
      .fork()
      .filter((doc) => doc.id.startsWith(`${stream}/`) || doc.id.startsWith('both/'))
      .through(
        packStage({
          seqLen: config.seqLen,
          tail: config.tail,
          boundaries: config.boundaries,
          padId: encoder.eosId,
          stats: progress.pack[stream],
        }),
      ),
  );
  try {
    return Object.fromEntries(
      await Promise.all(
        STREAM_NAMES.map(async (stream, position) => {
          const writer = writers[position]!;
          for await (const sequence of toAsyncIterable(branches[position]!)) await writer.write(sequence);
          return [stream, await writer.finish()] as const;
        }),
      ),
    ) as Record<StreamName, SequenceSpillReader>;
  } finally {
    await Promise.all(writers.map((writer) => writer.close()));
  }
}

function sinkFor(dir: string, config: RunConfig, encoder: Encoder, progress: RunProgress) {
  return mdsSink({
    dir,
    dtype: encoder.vocabSize < 65_536 ? 'uint16' : 'uint32',
    boundaries: config.boundaries,
    compression: config.compression,
    shardSize: config.shardSize,
    hashes: config.hashes,
    onShard: () => {
      progress.write.shards += 1;
    },
  });
}

/** Phase two: the mixture (or each stream on its own), in shuffled or storage order, through the MDS sink. */
async function writeOutput(
  spills: Record<StreamName, SequenceSpillReader>,
  config: RunConfig,
  encoder: Encoder,
  progress: RunProgress,
): Promise<WrittenOutput> {
  const available = { real: spills.real.sequences, synthetic: spills.synthetic.sequences };
  const plan = planMix(available, { realEpochs: config.realEpochs, syntheticWeight: config.syntheticWeight });
  const order = { shuffle: config.shuffle, seed: config.shuffleSeed };
  const count = (ref: SequenceRef, sequence: Sequence) => {
    progress.write.written += 1;
    progress.write.tokens[ref.stream] += sequence.tokens.length;
  };
  progress.write.started = true;
  const datasets: Record<string, WrittenDataset> = {};
  if (config.streams === 'separate') {
    progress.write.planned = available.real + available.synthetic;
    for (const stream of STREAM_NAMES) {
      const dir = join(config.out, stream);
      await mkdir(dir, { recursive: true });
      const position = streamOrder(stream, available[stream], order);
      const sequences = orderedSequences(
        available[stream],
        (at) => ({ stream, index: position(at) }),
        spills,
        count,
      );
      datasets[stream] = await sinkFor(dir, config, encoder, progress)(sequences);
    }
    const totals = {
      real: { sequences: available.real, tokens: spills.real.tokens },
      synthetic: { sequences: available.synthetic, tokens: spills.synthetic.tokens },
    };
    const spec = mixtureSpec(plan, totals);
    await writeFile(join(config.out, MIXTURE_FILE), `${JSON.stringify(spec, null, 2)}\n`);
  } else {
    progress.write.planned = plan.total;
    const sequences = orderedSequences(plan.total, mixedOrder(plan, order), spills, count);
    datasets.mixture = await sinkFor(config.out, config, encoder, progress)(sequences);
  }
  const realTokensSeen =
    config.streams === 'separate' ? spills.real.tokens * plan.realEpochs : progress.write.tokens.real;
  return {
    datasets,
    mix: {
      streams: config.streams,
      realEpochs: plan.realEpochs,
      syntheticWeight: plan.syntheticWeight,
      syntheticEpochs: plan.syntheticEpochs,
      sequences: { real: plan.slots.real, synthetic: plan.slots.synthetic, total: plan.total },
      realTokensSeen,
      syntheticTokensSeen:
        config.streams === 'separate'
          ? Math.round(spills.synthetic.tokens * plan.syntheticEpochs)
          : progress.write.tokens.synthetic,
      shuffled: config.shuffle,
      shuffleSeed: config.shuffleSeed,
    },
  };
}
