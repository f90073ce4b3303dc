// An independent reader of megadocs' flat token memmaps, written from the format's facts (raw little-endian ids,
// no header, whole rows of seq_len; memmap.json; gzipped `start,end,id` spans) as the tests' oracle.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface MemmapSpan {
  start: number;
  end: number;
  id: string;
}

export interface MemmapDataset {
  index: {
    dtype: string;
    seq_len: number;
    eos_id: number;
    tokens: number;
    sequences: number;
    files: Array<{ path: string; spans: string | null; tokens: number; sequences: number }>;
  };
  /** Every sequence, part after part. */
  sequences: Uint32Array[];
  /** Each part's tokens and spans. */
  parts: Array<{ tokens: Uint32Array; spans: MemmapSpan[] }>;
}

/** One CSV line of `start,end,id`, the id possibly quoted. */
function parseSpan(line: string): MemmapSpan {
  const [start, end] = line.split(',', 2);
  let id = line.slice(start!.length + end!.length + 2);
  if (id.startsWith('"')) id = id.slice(1, -1).replaceAll('""', '"');
  return { start: Number(start), end: Number(end), id };
}

export async function readMemmap(dir: string): Promise<MemmapDataset> {
  const index = JSON.parse(await readFile(join(dir, 'memmap.json'), 'utf8')) as MemmapDataset['index'];
  const width = index.dtype === 'uint16' ? 2 : index.dtype === 'uint32' || index.dtype === 'int32' ? 4 : 0;
  if (width === 0) throw new Error(`dtype ${index.dtype}`);
  const sequences: Uint32Array[] = [];
  const parts: MemmapDataset['parts'] = [];
  for (const file of index.files) {
    const bytes = await readFile(join(dir, file.path));
    if (bytes.length !== file.tokens * width) throw new Error(`${file.path}: ${bytes.length} bytes`);
    if (file.tokens !== file.sequences * index.seq_len) throw new Error(`${file.path}: not whole rows`);
    const tokens = new Uint32Array(file.tokens);
    for (let at = 0; at < file.tokens; at += 1)
      tokens[at] =
        width === 2
          ? bytes.readUInt16LE(at * 2)
          : index.dtype === 'int32'
            ? bytes.readInt32LE(at * 4)
            : bytes.readUInt32LE(at * 4);
    for (let row = 0; row < file.sequences; row += 1)
      sequences.push(tokens.slice(row * index.seq_len, (row + 1) * index.seq_len));
    const text = file.spans ? gunzipSync(await readFile(join(dir, file.spans))).toString('utf8') : '';
    const spans = text.split('\n').filter(Boolean).map(parseSpan);
    let previous = 0;
    for (const span of spans) {
      if (span.start < previous || span.end <= span.start || span.end > file.tokens)
        throw new Error(`${file.spans}: span ${JSON.stringify(span)}`);
      previous = span.end;
    }
    parts.push({ tokens, spans });
  }
  return { index, sequences, parts };
}
