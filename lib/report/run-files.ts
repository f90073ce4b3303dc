// The run's own files as the report reads them, each scan stopping after a bounded number of documents: the
// generations (`generate` shards, or the journal of `run`), the input documents, and a few output sequences.
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CompletionResult } from '../backends/backend.js';
import { feedUnits } from '../feed-units.js';
import { SEGMENT_PATTERN } from '../generate/journal.js';
import { planShards } from '../plan.js';
import { seededIntegers } from '../shuffle.js';
import type { JsonlIndex } from '../sinks/jsonl.js';
import { decodedChunks } from '../sources/formats/decompress.js';
import { requireFormat } from '../sources/formats/detect.js';
import { jsonlRecords } from '../sources/formats/jsonl.js';
import { expandInputs } from '../sources/inputs.js';
import { localShard } from '../sources/local.js';
import { iterateDocs } from '../sources/read.js';
import type { Doc } from '../types.js';

export interface ScannedGeneration {
  label: string;
  finishReason: string;
  text: string;
  /** Where a stretch rationale goes in its document (a string index), when the shard records it. */
  splitOffset?: number;
}

/** One document's generations, in the order the run wrote them. */
export interface GenerationGroup {
  /** The document id (`generate` shards), absent where only its position is known (the journal). */
  id?: string;
  /** The document's position in the generating stage's input. */
  ordinal: number;
  generations: ScannedGeneration[];
}

interface GenerationRecord {
  doc_id: string;
  recipe: string;
  style?: string;
  index: number;
  text: string;
  finish_reason: string;
  genre?: string;
  audience?: string;
  split?: number;
  split_offset?: number;
}

function recordLabel(record: GenerationRecord): string {
  const kind = record.style ? `${record.recipe}/${record.style}` : record.recipe;
  const pair = record.genre ? ` (${record.genre}; ${record.audience})` : '';
  const split = record.split !== undefined ? ` after split ${record.split}` : '';
  return `${kind} #${record.index}${split}${pair}`;
}

/** The first `limit` documents' generations in a `generate` output's jsonl.zst shards, document by document. */
export async function* generateShardGroups(dir: string, limit: number): AsyncGenerator<GenerationGroup> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as JsonlIndex;
  let current: GenerationGroup | undefined;
  let ordinal = 0;
  for (const entry of index.shards) {
    const shard = localShard(join(dir, entry.basename));
    const chunks = decodedChunks(shard, requireFormat(shard.name), () => {});
    const reject = (error: Error) => {
      throw error;
    };
    for await (const batch of jsonlRecords(shard.name, chunks, reject)) {
      for (const { value } of batch) {
        const record = value as GenerationRecord;
        if (current?.id !== record.doc_id) {
          if (current) yield current;
          if (ordinal === limit) return;
          current = { id: record.doc_id, ordinal, generations: [] };
          ordinal += 1;
        }
        current.generations.push({
          label: recordLabel(record),
          finishReason: record.finish_reason,
          text: record.text,
          splitOffset: record.split_offset,
        });
      }
    }
  }
  if (current) yield current;
}

interface JournalLine {
  o: number;
  k: string;
  r?: CompletionResult;
  l?: number;
}

/** One journaled answer: the document it was for, its request key and its choices. */
export interface JournalAnswer {
  ordinal: number;
  key: string;
  choices: Array<{ finishReason: string; text: string }>;
}

/**
 * The answers the journal in `stateDir` holds for documents 0..limit-1, each once (a request answered again by a
 * resumed run is skipped): each segment is read only until its lines say every document below `limit` was done
 * (`l`), so a long journal is not read whole.
 */
export async function* journalAnswers(stateDir: string, limit: number): AsyncGenerator<JournalAnswer> {
  const segments = (await readdir(stateDir).catch(() => [] as string[]))
    .filter((name) => SEGMENT_PATTERN.test(name))
    .sort();
  const seen = new Set<string>();
  for (const segment of segments) {
    const input = createReadStream(join(stateDir, segment), { encoding: 'utf8' });
    try {
      for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
        let line: JournalLine;
        try {
          line = JSON.parse(text) as JournalLine;
        } catch {
          continue; // a torn last line, as replay ignores it
        }
        if (line.l !== undefined && line.l >= limit) break;
        if (line.r === undefined || line.o === undefined || line.o >= limit) continue;
        const id = `${line.o} ${line.k}`;
        if (seen.has(id)) continue;
        seen.add(id);
        yield { ordinal: line.o, key: line.k, choices: line.r.choices };
      }
    } finally {
      input.destroy();
    }
  }
}

export interface InputSelection {
  inputs: string[];
  record: { textField: string; idField: string; onError: 'fail' | 'skip' };
  rank?: { rank: number; worldSize: number };
}

/** The first `limit` documents of the run's inputs (this rank's share), read again from where they are. */
export async function* inputDocs(selection: InputSelection, limit: number): AsyncGenerator<Doc> {
  const all = await expandInputs(selection.inputs);
  const shards = selection.rank && selection.rank.worldSize > 1 ? planShards(all, selection.rank) : all;
  let count = 0;
  for (const shard of shards) {
    for await (const doc of iterateDocs(shard, selection.record)) {
      if (count === limit) return;
      count += 1;
      yield doc;
    }
  }
}

/** `count` sequences (or Megatron entries) of the token dataset in `dir`, drawn by seed from one of its units. */
export async function sampledSequences(
  dir: string,
  count: number,
  seed: number,
): Promise<Array<{ label: string; tokens: ArrayLike<number> }>> {
  const units = await feedUnits(dir);
  if (units.length === 0 || count === 0) return [];
  const draw = seededIntegers(seed, 'report-sequences');
  const unit = await units[draw(units.length)]!.load();
  const positions = new Set<number>();
  while (positions.size < Math.min(count, unit.count)) positions.add(draw(unit.count));
  return [...positions]
    .sort((a, b) => a - b)
    .map((at) => ({ label: `${unit.name} #${at}`, tokens: unit.tokens(at) }));
}
