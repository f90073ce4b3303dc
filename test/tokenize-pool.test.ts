// The tokenize stage and its worker pool: same ids and order as the single-thread encoder, EOS/BOS,
// errors out of the stream, bounded read-ahead, a crashing worker, and a process that exits when done.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import _ from 'highland';
import { describe, expect, it, vi } from 'vitest';
import { MegadocsError } from '../lib/errors.js';
import { drain, fromAsyncIterable } from '../lib/stream.js';
import { type Encoder, loadEncoder, loadTokenTables } from '../lib/tokenize/encoders.js';
import { TokenizerPool } from '../lib/tokenize/pool.js';
import { type TokenizeOptions, tokenizeStage } from '../lib/tokenize/stage.js';
import { idEncoder } from '../lib/tokenize/token-tables.js';
import type { Doc, TokenizedDoc } from '../lib/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(here, '../../shared');
const LLAMA = `tiktoken:${path.join(shared, 'tokenizers/meta-llama-3-8B.tiktoken')}`;

async function wikipediaDocs(): Promise<Doc[]> {
  const lines = (await readFile(path.join(shared, 'data/wikipedia-2349.jsonl'), 'utf8')).split('\n');
  return lines.filter(Boolean).map((line) => {
    const record = JSON.parse(line) as { id: string; text: string };
    return { id: record.id, text: record.text };
  });
}

/** Each single-thread reference encoder is loaded once for the whole file. */
const loaded = new Map<string, Promise<Encoder>>();
function reference(spec: string): Promise<Encoder> {
  if (!loaded.has(spec)) loaded.set(spec, loadEncoder(spec));
  return loaded.get(spec)!;
}

async function tokenize(docs: Doc[], options: TokenizeOptions): Promise<TokenizedDoc[]> {
  const out: TokenizedDoc[] = [];
  await drain(_(docs).through(tokenizeStage(options)), (doc) => out.push(doc));
  return out;
}

async function streamError(docs: Doc[], options: TokenizeOptions): Promise<MegadocsError> {
  const error = await tokenize(docs, options).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(MegadocsError);
  return error as MegadocsError;
}

function concatenated(arrays: Uint32Array[]): Buffer {
  return Buffer.concat(arrays.map((array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength)));
}

describe('tokenize stage', () => {
  it('gives the single-thread encoder ids, in input order, with 2 workers on a real file', async () => {
    const docs = await wikipediaDocs();
    const encoder = await reference('o200k_base');
    const expected = docs.map((doc) => Uint32Array.from([...encoder.encode(doc.text), encoder.eosId]));
    const out = await tokenize(docs, { tokenizer: 'o200k_base', workers: 2, eos: true, bos: false });
    expect(out.map((doc) => doc.id)).toEqual(docs.map((doc) => doc.id));
    expect(out.map((doc) => doc.tokens.length)).toEqual(expected.map((tokens) => tokens.length));
    expect(Buffer.compare(concatenated(out.map((doc) => doc.tokens)), concatenated(expected))).toBe(0);
  });

  it('gives the same output on the main thread (workers 0) as on workers', async () => {
    const docs = (await wikipediaDocs()).slice(0, 300);
    const options = { tokenizer: 'cl100k_base', eos: true, bos: false };
    const [main, pooled] = await Promise.all([
      tokenize(docs, { ...options, workers: 0 }),
      tokenize(docs, { ...options, workers: 2 }),
    ]);
    expect(main.map((doc) => doc.id)).toEqual(pooled.map((doc) => doc.id));
    expect(
      Buffer.compare(
        concatenated(main.map((doc) => doc.tokens)),
        concatenated(pooled.map((doc) => doc.tokens)),
      ),
    ).toBe(0);
  });

  it.each([0, 1])('prepends BOS and appends EOS as ids, not as parsed text (workers %i)', async (workers) => {
    const llama = await reference(LLAMA);
    const docs = [
      { id: 'a', text: 'A short document.' },
      { id: 'b', text: 'It mentions <|begin_of_text|> and <|end_of_text|> as text.' },
    ];
    const out = await tokenize(docs, { tokenizer: LLAMA, workers, eos: true, bos: true });
    docs.forEach((doc, index) => {
      expect([...out[index]!.tokens]).toEqual([llama.bosId, ...llama.encode(doc.text), llama.eosId]);
    });
    const bare = await tokenize(docs, { tokenizer: LLAMA, workers, eos: false, bos: false });
    expect([...bare[1]!.tokens]).toEqual(llama.encode(docs[1]!.text));
  });

  it.each([0, 1])(
    'gives just EOS for an empty text, and ignores bos for encodings without BOS (workers %i)',
    async (workers) => {
      const encoder = await reference('r50k_base');
      const out = await tokenize([{ id: 'empty', text: '' }], {
        tokenizer: 'r50k_base',
        workers,
        eos: true,
        bos: true,
      });
      expect([...out[0]!.tokens]).toEqual([encoder.eosId]);
    },
  );

  it.each([0, 1])('errors out of the stream for an unknown tokenizer (workers %i)', async (workers) => {
    const error = await streamError([{ id: 'x', text: 'hello' }], {
      tokenizer: 'gpt5',
      workers,
      eos: true,
      bos: false,
    });
    expect(error.code).toBe('BAD_OPTION');
    expect(error.message).toContain('o200k_base');
    const onEmptyInput = await streamError([], { tokenizer: 'gpt5', workers, eos: true, bos: false });
    expect(onEmptyInput.code).toBe('BAD_OPTION');
  });

  it('errors out of the stream, naming file and line, when a worker cannot load the rank file', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'megadocs-pool-'));
    const file = path.join(directory, 'broken.tiktoken');
    await writeFile(file, 'IQ== 0\nthis is not a rank line\n');
    const docs = (await wikipediaDocs()).slice(0, 20);
    const error = await streamError(docs, {
      tokenizer: `tiktoken:${file}`,
      workers: 2,
      eos: true,
      bos: false,
    });
    expect(error.code).toBe('TOKENIZER');
    expect(error.message).toContain(`${file}:2`);
  });

  it('closes its pool when the stream ends and when the input errors', async () => {
    const close = vi.spyOn(TokenizerPool.prototype, 'close');
    try {
      const options = { tokenizer: 'r50k_base', workers: 2, eos: true, bos: false };
      await tokenize([{ id: 'a', text: 'a' }], options);
      expect(close).toHaveBeenCalledTimes(1);
      const failing = _<Doc>([{ id: 'b', text: 'b' }]).concat(_.fromError<Doc>(new Error('source broke')));
      await expect(drain(failing.through(tokenizeStage(options)))).rejects.toThrow('source broke');
      expect(close).toHaveBeenCalledTimes(2);
    } finally {
      close.mockRestore();
    }
  });

  it('reads only a bounded window ahead of what the consumer took', async () => {
    const total = 100_000;
    let pulled = 0;
    async function* lazyDocs(): AsyncGenerator<Doc> {
      for (let index = 0; index < total; index++) {
        pulled++;
        yield { id: String(index), text: `document number ${index} says hello` };
      }
    }
    const firstTen: TokenizedDoc[] = [];
    await drain(
      fromAsyncIterable(lazyDocs())
        .through(tokenizeStage({ tokenizer: 'r50k_base', workers: 2, eos: true, bos: false }))
        .take(10),
      (doc) => firstTen.push(doc),
    );
    expect(firstTen.map((doc) => doc.id)).toEqual([...Array(10).keys()].map(String));
    expect(pulled).toBeLessThan(total / 4);
  });
});

describe('tokenizer pool', () => {
  it('rejects with an error naming the tokenizer when a worker crashes', async () => {
    // Without the table cache, the table builder loads the rank table: more than an 8 MB heap holds.
    const pool = new TokenizerPool({
      tokenizer: 'o200k_base',
      workers: 1,
      eos: true,
      bos: false,
      cacheDir: false,
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
    });
    const error = await pool.encode(['hello']).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MegadocsError);
    expect((error as MegadocsError).message).toMatch(/tokenizer worker for o200k_base crashed/);
    await pool.close();
  });

  it('encodes batches on several workers and refuses work once closed', async () => {
    const pool = new TokenizerPool({ tokenizer: 'r50k_base', workers: 2, eos: false, bos: false });
    const encoder = await reference('r50k_base');
    const texts = ['one', 'two words', '', 'three little words'];
    const batches = await Promise.all([pool.encode(texts), pool.encode(texts.slice(1)), pool.encode(['x'])]);
    expect([...batches[0]!.ends]).toEqual(
      texts.map((_text, index) =>
        texts.slice(0, index + 1).reduce((sum, text) => sum + encoder.encode(text).length, 0),
      ),
    );
    expect([...batches[1]!.tokens]).toEqual(texts.slice(1).flatMap((text) => encoder.encode(text)));
    await pool.close();
    await expect(pool.encode(['late'])).rejects.toThrow(/closed/);
  });
});

describe('shared lookup tables', () => {
  it('are built once in shared memory and encode as the full encoder does (Llama 3 rank file)', async () => {
    const tables = await loadTokenTables(LLAMA);
    for (const array of [tables.pieces.slots, tables.pieces.units, tables.bytes.slots, tables.bytes.bytes]) {
      expect(array.buffer).toBeInstanceOf(SharedArrayBuffer);
    }
    const encoder = await reference(LLAMA);
    const fromTables = idEncoder(tables);
    expect({ eos: fromTables.eosId, bos: fromTables.bosId, vocab: fromTables.vocabSize }).toEqual({
      eos: encoder.eosId,
      bos: encoder.bosId,
      vocab: encoder.vocabSize,
    });
    for (const doc of (await wikipediaDocs()).slice(0, 50)) {
      const out = new Uint32Array(doc.text.length * 3);
      expect(Array.from(out.subarray(0, fromTables.encodeInto(doc.text, out, 0)))).toEqual(
        encoder.encode(doc.text),
      );
    }
  });
});

describe('process lifetime', () => {
  const run = promisify(execFile);
  const stage = pathToFileURL(path.resolve(here, '../lib/tokenize/stage.ts')).href;
  const highland = pathToFileURL(path.resolve(here, '../node_modules/highland/lib/index.js')).href;

  /** Runs `body` in a fresh Node process (TypeScript through tsx); resolves with its stdout once it exits. */
  async function inChildProcess(body: string): Promise<string> {
    const script = `import _ from ${JSON.stringify(highland)};
      import { tokenizeStage } from ${JSON.stringify(stage)};
      const docs = Array.from({ length: 400 }, (_x, index) => ({ id: String(index), text: 'some text '.repeat(index) }));
      const tokenized = _(docs).through(tokenizeStage({ tokenizer: 'r50k_base', workers: 2, eos: true, bos: false }));
      ${body}`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: path.resolve(here, '..'),
      // A hang guard, not a timing check: a child that never exits is killed and the test fails.
      timeout: 45_000,
    });
    return stdout;
  }

  it('exits on its own after the stream ends (the pool is closed)', async () => {
    const stdout = await inChildProcess(
      `let count = 0; tokenized.each(() => count++).done(() => console.log('docs', count));`,
    );
    expect(stdout.trim()).toBe('docs 400');
  });

  it('exits on its own when the consumer stops early', async () => {
    const stdout = await inChildProcess(
      `tokenized.take(5).toArray((docs) => console.log('docs', docs.length));`,
    );
    expect(stdout.trim()).toBe('docs 5');
  });
});
