// What a report shows, gathered from a run directory in bounded work: megadocs.json (the run's counters), the
// first `scan` documents of its generations and inputs, a seeded sample of `samples` of them, a few sequences.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MegadocsError, messageOf } from '../errors.js';
import type { TokenizerDownloadOptions } from '../hub/tokenizer-download.js';
import { Reservoir } from '../reservoir.js';
import { MANIFEST_FILE, type RunManifest } from '../rundir.js';
import { DEFAULT_TOKENIZER, type Encoder, loadEncoder } from '../tokenize/encoders.js';
import {
  generateShardGroups,
  type InputSelection,
  inputDocs,
  journalAnswers,
  type ScannedGeneration,
  sampledSequences,
} from './run-files.js';

export interface ReportOptions {
  /** Documents shown in the sample browser (default 20). */
  samples?: number;
  /** Picks the sample (default 0). */
  seed?: number;
  /** Documents read from the run's files for the sample and the histograms (default 5,000). */
  scan?: number;
  /** Output sequences decoded (default 3). */
  sequences?: number;
  /** Where an `hf:` tokenizer is downloaded from and to (see loadEncoder). */
  hubTokenizer?: TokenizerDownloadOptions;
}

export const REPORT_DEFAULTS = { samples: 20, seed: 0, scan: 5000, sequences: 3 } as const;

/** Characters of a generation shown as the example of its cause (its end, where a truncation shows). */
const EXAMPLE_CHARS = 160;

/** Characters of one text kept in the report; the rest is counted, not shown. */
export const MAX_TEXT_CHARS = 20_000;

export interface SampleGeneration extends ScannedGeneration {
  tokens?: number;
}

export interface SampleDoc {
  id: string;
  ordinal: number;
  source?: string;
  sourceTokens?: number;
  generations: SampleGeneration[];
}

export interface ReportValues {
  sourceTokens: number[];
  generationTokens: number[];
  ratio: number[];
  megadocTokens: number[];
  sequencesPerMegadoc: number[];
}

export interface ReportData {
  dir: string;
  manifest: RunManifest;
  settings: Required<ReportOptions>;
  tokenizer?: string;
  /** Documents read from the run's files, and whether that was all of them. */
  scanned: { documents: number; generations: number; whole: boolean };
  samples: SampleDoc[];
  values: ReportValues;
  finishReasons: Record<string, number>;
  /** An example of each cause the scan saw (a truncated generation, a document left without answers). */
  examples: Record<string, string>;
  sequences: Array<{ label: string; parts: string[] }>;
  /** What could not be read, and why (shown in the report). */
  notes: string[];
}

async function readRunManifest(dir: string): Promise<RunManifest> {
  const file = join(dir, MANIFEST_FILE);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as RunManifest;
  } catch (error) {
    throw new MegadocsError('BAD_INPUT', `cannot read the run's manifest (${messageOf(error)})`, {
      where: file,
      hint: 'Point megadocs report at the --out directory of a pack, generate or run command',
    });
  }
}

/** A text cut to MAX_TEXT_CHARS, saying how much was left out. */
export function shownText(text: string): string {
  if (text.length <= MAX_TEXT_CHARS) return text;
  return `${text.slice(0, MAX_TEXT_CHARS)}\n[... ${text.length - MAX_TEXT_CHARS} more characters not shown]`;
}

function inputSelection(options: Record<string, unknown>): InputSelection | string {
  const inputs = (options.inputs ?? []) as string[];
  if (inputs.length === 0) return 'the manifest names no inputs';
  if (inputs.some((input) => input.startsWith('hf://'))) {
    return 'the inputs are on the Hugging Face Hub, which the report does not download from';
  }
  return {
    inputs,
    record: {
      textField: (options.textField as string) ?? 'text',
      idField: (options.idField as string) ?? 'id',
      onError: (options.onError as 'fail' | 'skip') ?? 'fail',
    },
    rank: options.worldSize
      ? { rank: options.rank as number, worldSize: options.worldSize as number }
      : undefined,
  };
}

async function encoderFor(
  options: Record<string, unknown>,
  notes: string[],
  hubTokenizer: TokenizerDownloadOptions | undefined,
): Promise<Encoder | undefined> {
  const spec = (options.tokenizer ?? options.generatorTokenizer ?? DEFAULT_TOKENIZER) as string;
  try {
    return await loadEncoder(spec, options.eosToken as string | undefined, hubTokenizer);
  } catch (error) {
    notes.push(`token counts left out: the tokenizer ${spec} did not load (${messageOf(error)})`);
    return undefined;
  }
}

/** The scanned documents' generations: token counts of each (by document key) and the sampled ones' texts. */
interface GenerationScan {
  byKey: Map<string, { tokens: number[]; sample?: SampleDoc }>;
  reservoir: Reservoir<SampleDoc>;
  finishReasons: Record<string, number>;
  generations: number;
  /** One example per cause seen in the scan (a truncated generation), for the drops table. */
  examples: Record<string, string>;
}

/** The key a document is matched by against the inputs: its id in `generate` shards, its position in a journal. */
function documentKey(command: string, id: string | undefined, ordinal: number): string {
  return command === 'generate' ? `id:${id}` : `at:${ordinal}`;
}

/**
 * Reads the generations of the first `scan` documents, holding the texts of the sample only: `generate` shards in
 * one pass (a document's records are together), a journal in two (its lines come in the order answers arrived).
 */
async function scanGenerations(
  dir: string,
  command: string,
  settings: Required<ReportOptions>,
  count: (text: string) => number | undefined,
): Promise<GenerationScan> {
  const scan: GenerationScan = {
    byKey: new Map(),
    reservoir: new Reservoir<SampleDoc>(settings.samples, settings.seed, 'report-samples'),
    finishReasons: {},
    generations: 0,
    examples: {},
  };
  const counted = (document: string, generation: ScannedGeneration): SampleGeneration => {
    const { finishReasons, examples } = scan;
    finishReasons[generation.finishReason] = (finishReasons[generation.finishReason] ?? 0) + 1;
    scan.generations += 1;
    if (generation.finishReason === 'length') {
      examples.length ??= `${document}: ...${generation.text.slice(-EXAMPLE_CHARS)}`;
    }
    return { ...generation, tokens: count(generation.text) };
  };
  const tokensOf = (generations: SampleGeneration[]) =>
    generations.flatMap((generation) => (generation.tokens === undefined ? [] : [generation.tokens]));
  if (command === 'generate') {
    for await (const group of generateShardGroups(dir, settings.scan)) {
      const generations = group.generations.map((generation) => counted(group.id!, generation));
      const sample = { id: group.id!, ordinal: group.ordinal, generations };
      scan.byKey.set(documentKey(command, group.id, group.ordinal), { tokens: tokensOf(generations) });
      scan.reservoir.offer(sample);
    }
  } else if (command === 'run') {
    const stateDir = join(dir, 'state');
    for await (const answer of journalAnswers(stateDir, settings.scan)) {
      const key = documentKey(command, undefined, answer.ordinal);
      const entry = scan.byKey.get(key) ?? { tokens: [] };
      scan.byKey.set(key, entry);
      const document = `document ${answer.ordinal + 1}`;
      entry.tokens.push(
        ...tokensOf(answer.choices.map((choice) => counted(document, { label: '', ...choice }))),
      );
    }
    const ordinals = [...scan.byKey.keys()].map((key) => Number(key.slice(3))).sort((a, b) => a - b);
    for (const ordinal of ordinals) scan.reservoir.offer({ id: `#${ordinal}`, ordinal, generations: [] });
    const sampled = new Map(scan.reservoir.items.map((sample) => [sample.ordinal, sample]));
    for await (const answer of journalAnswers(stateDir, settings.scan)) {
      const sample = sampled.get(answer.ordinal);
      for (const [choice, { finishReason, text }] of sample ? answer.choices.entries() : []) {
        sample!.generations.push({
          label: `answer ${sample!.generations.length + 1} (request ${answer.key.slice(0, 8)}, choice ${choice})`,
          finishReason,
          text,
          tokens: count(text),
        });
      }
    }
  }
  for (const sample of scan.reservoir.items) {
    scan.byKey.get(documentKey(command, sample.id, sample.ordinal))!.sample = sample;
  }
  return scan;
}

/** Tokens of each megadoc part (generations, the original) plus one EOS each, as `run` assembles them. */
function megadocTokens(
  options: Record<string, unknown>,
  sourceTokens: number | undefined,
  generationTokens: number[],
): number[] {
  const eos = options.eos === false ? 0 : 1;
  const original = options.original === 'none' || sourceTokens === undefined ? [] : [sourceTokens];
  if (options.assemble === 'none') return [...generationTokens, ...original].map((tokens) => tokens + eos);
  const parts = [...generationTokens, ...original];
  return [parts.reduce((sum, tokens) => sum + tokens + eos, 0)];
}

/** Reads everything a report of `dir` shows; the work is bounded by `scan`, `samples` and `sequences`. */
export async function collectReport(dir: string, options: ReportOptions = {}): Promise<ReportData> {
  const settings = { ...REPORT_DEFAULTS, ...options } as Required<ReportOptions>;
  const manifest = await readRunManifest(dir);
  const runOptions = manifest.options ?? {};
  const notes: string[] = [];
  const encoder = await encoderFor(runOptions, notes, options.hubTokenizer);
  const count = (text: string) => encoder?.encode(text).length;
  const command = manifest.command;
  const generating = command !== 'pack';
  let scan: GenerationScan;
  try {
    scan = await scanGenerations(dir, command, settings, count);
  } catch (error) {
    notes.push(`generations left out: ${messageOf(error)}`);
    scan = await scanGenerations(dir, 'pack', settings, count);
  }
  const { byKey, reservoir } = scan;
  const keyOf = (id: string | undefined, ordinal: number) => documentKey(command, id, ordinal);

  const values: ReportValues = {
    sourceTokens: [],
    generationTokens: [...byKey.values()].flatMap((entry) => entry.tokens),
    ratio: [],
    megadocTokens: [],
    sequencesPerMegadoc: [],
  };
  const selection = inputSelection(runOptions);
  let inputsRead = 0;
  if (typeof selection === 'string') {
    notes.push(`originals and source token counts left out: ${selection}`);
  } else {
    try {
      for await (const doc of inputDocs(selection, settings.scan)) {
        const ordinal = inputsRead;
        inputsRead += 1;
        const sourceTokens = count(doc.text);
        if (sourceTokens !== undefined) values.sourceTokens.push(sourceTokens);
        if (!generating) {
          reservoir.offer({ id: doc.id, ordinal, source: doc.text, sourceTokens, generations: [] });
          if (sourceTokens !== undefined)
            values.megadocTokens.push(sourceTokens + (runOptions.eos === false ? 0 : 1));
          continue;
        }
        const entry = byKey.get(keyOf(doc.id, ordinal));
        if (!entry) {
          scan.examples.failed_requests ??= `${doc.id} (document ${ordinal + 1}) has no answer`;
          continue;
        }
        if (entry.sample) Object.assign(entry.sample, { id: doc.id, source: doc.text, sourceTokens });
        if (sourceTokens !== undefined && sourceTokens > 0)
          for (const tokens of entry.tokens) values.ratio.push(tokens / sourceTokens);
        if (command === 'run' && sourceTokens !== undefined)
          values.megadocTokens.push(...megadocTokens(runOptions, sourceTokens, entry.tokens));
      }
    } catch (error) {
      notes.push(`originals read from the inputs stopped: ${messageOf(error)}`);
    }
  }
  const seqLen = runOptions.format === 'megatron' ? undefined : (runOptions.seqLen as number | undefined);
  if (seqLen) values.sequencesPerMegadoc = values.megadocTokens.map((tokens) => tokens / seqLen);

  const missing = reservoir.items.filter((sample) => sample.source === undefined).length;
  if (missing > 0 && typeof selection !== 'string') {
    notes.push(
      `${missing} sampled documents were not found among the first ${inputsRead} input documents (inputs moved or changed since the run, or a documents transform reordered them)`,
    );
  }
  const sequences =
    encoder && command !== 'generate' && runOptions.format !== 'jsonl'
      ? await decodedSequences(dir, runOptions, settings, encoder, notes)
      : [];

  const scannedDocuments = generating ? byKey.size : inputsRead;
  const recorded = command === 'pack' ? (manifest.stats?.documents as number | undefined) : undefined;
  const generatedDocs = generatingDocuments(manifest);
  const whole = scannedDocuments < settings.scan || scannedDocuments === (recorded ?? generatedDocs);
  return {
    dir,
    manifest,
    settings,
    tokenizer: encoder?.name,
    scanned: { documents: scannedDocuments, generations: scan.generations, whole },
    samples: reservoir.items.sort((a, b) => a.ordinal - b.ordinal),
    values,
    finishReasons: scan.finishReasons,
    examples: scan.examples,
    sequences,
    notes,
  };
}

/** A few output sequences drawn by seed, decoded and cut at each EOS into the documents (parts) they hold. */
async function decodedSequences(
  dir: string,
  runOptions: Record<string, unknown>,
  settings: Required<ReportOptions>,
  encoder: Encoder,
  notes: string[],
): Promise<ReportData['sequences']> {
  const datasetDir = runOptions.streams === 'separate' ? join(dir, 'synthetic') : dir;
  try {
    const sampled = await sampledSequences(datasetDir, settings.sequences, settings.seed);
    return sampled.map((sequence) => {
      const parts: string[] = [];
      let part: number[] = [];
      for (const token of Array.from(sequence.tokens)) {
        if (token !== encoder.eosId) {
          part.push(token);
          continue;
        }
        parts.push(shownText(encoder.decode(part)));
        part = [];
      }
      if (part.length > 0) parts.push(shownText(encoder.decode(part)));
      return { label: sequence.label, parts };
    });
  } catch (error) {
    notes.push(`output sequences left out: ${messageOf(error)}`);
    return [];
  }
}

/** The documents the generating stage emitted, from the run's stats. */
function generatingDocuments(manifest: RunManifest): number | undefined {
  const stats = manifest.stats ?? {};
  const generate = (manifest.command === 'run' ? stats.generate : stats) as
    | { documents?: number }
    | undefined;
  return generate?.documents;
}
