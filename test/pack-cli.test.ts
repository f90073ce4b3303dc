// End to end: `megadocs pack` on the real corpora in ../shared/data, read back with our MDS reader and decoded:
// the documents come back in order, separated by EOS, except the dropped tail. Plus the CLI's failure modes.
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iterateMdsSamples } from '../lib/sinks/mds-reader.js';
import { expandInputs } from '../lib/sources/inputs.js';
import { readDocs } from '../lib/sources/read.js';
import { toAsyncIterable } from '../lib/stream.js';
import { loadEncoder } from '../lib/tokenize/encoders.js';
import {
  REPO_ROOT,
  runCli,
  SHARED_DATA,
  SHARED_TOKENIZERS,
  startCli,
  tempDir,
  waitCli,
} from './helpers/cli.js';

const record = { textField: 'text', idField: 'id', onError: 'fail' as const };

async function packedTokens(dir: string): Promise<Uint32Array> {
  const parts: number[] = [];
  for await (const sample of iterateMdsSamples(dir)) parts.push(...(sample.tokens as ArrayLike<number>));
  return Uint32Array.from(parts);
}

async function expectedTokens(
  input: string,
  tokenizer: string,
  fields = record,
): Promise<{ ids: Uint32Array; texts: string[] }> {
  const encoder = await loadEncoder(tokenizer);
  const ids: number[] = [];
  const texts: string[] = [];
  for await (const doc of toAsyncIterable(readDocs(await expandInputs([input]), fields))) {
    texts.push(doc.text);
    ids.push(...encoder.encode(doc.text), encoder.eosId);
  }
  return { ids: Uint32Array.from(ids), texts };
}

function sameTokens(a: Uint32Array, b: Uint32Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

describe('megadocs pack on real data', () => {
  const cases = [
    { file: 'fineweb-300.parquet', tokenizer: 'o200k_base', args: [] as string[] },
    {
      file: 'wikipedia-2349.jsonl.zst',
      tokenizer: `tiktoken:${join(SHARED_TOKENIZERS, 'meta-llama-3-8B.tiktoken')}`,
      args: [],
    },
    {
      file: 'cc-warc-100.zstd.parquet',
      tokenizer: 'cl100k_base',
      args: ['--text-field', 'contents', '--id-field', 'document_id'],
    },
  ];

  for (const { file, tokenizer, args } of cases) {
    it(`round-trips ${file} with ${tokenizer.split('/').pop()}`, async () => {
      const out = await tempDir();
      const input = join(SHARED_DATA, file);
      const result = await runCli([
        'pack',
        input,
        '--out',
        out,
        '--tokenizer',
        tokenizer,
        '--seq-len',
        '1024',
        '--workers',
        '2',
        ...args,
      ]);
      expect(result.stderr).toContain('megadocs pack: wrote');
      expect(result.code).toBe(0);

      const fields = args.length ? { ...record, textField: 'contents', idField: 'document_id' } : record;
      const expected = await expectedTokens(input, tokenizer, fields);
      const packed = await packedTokens(out);
      const kept = Math.floor(expected.ids.length / 1024) * 1024;
      expect(packed.length).toBe(kept);
      expect(sameTokens(packed, expected.ids.subarray(0, kept))).toBe(true);

      // Split the packed stream on EOS and decode: the documents, in order, up to the dropped tail.
      const encoder = await loadEncoder(tokenizer);
      const decoded: string[] = [];
      let start = 0;
      for (let i = 0; i < packed.length; i += 1) {
        if (packed[i] === encoder.eosId) {
          decoded.push(encoder.decode(packed.subarray(start, i)));
          start = i + 1;
        }
      }
      expect(decoded.length).toBeGreaterThan(expected.texts.length * 0.9);
      expect(decoded).toEqual(expected.texts.slice(0, decoded.length));

      const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
      expect(manifest.status).toBe('complete');
      expect(manifest.options.tokenizer).toBe(tokenizer);
      expect(manifest.stats.droppedTokens).toBe(expected.ids.length - kept);
    });
  }
});

describe('megadocs pack output and errors', () => {
  it('prints only the summary without a TTY, nothing with --quiet, JSON with --json', async () => {
    const input = join(SHARED_DATA, 'fineweb-300.jsonl');
    const plain = await runCli(['pack', input, '--out', await tempDir(), '--workers', '0']);
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toContain('\r');
    expect(plain.stderr).not.toContain('\u001b[');
    expect(plain.stderr).toMatch(/^megadocs pack: wrote/);
    const quiet = await runCli([
      'pack',
      input,
      '--out',
      await tempDir(),
      '--quiet',
      '--json',
      '--workers',
      '0',
    ]);
    expect(quiet.stderr).toBe('');
    const summary = JSON.parse(quiet.stdout.toString());
    expect(summary.documents).toBe(300);
    expect(summary.tokens).toBeGreaterThan(0);
  });

  it('warns when the whole input is shorter than one sequence', async () => {
    const result = await runCli([
      'pack',
      join(REPO_ROOT, 'fixtures/web-sample.jsonl'),
      '--out',
      await tempDir(),
      '--workers',
      '0',
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/warning: all \d+ tokens were dropped.*--seq-len/);
  });

  it('refuses to continue or redo a run whose input files changed since', async () => {
    const out = await tempDir();
    const input = join(await tempDir(), 'docs.jsonl');
    const lines = (await readFile(join(SHARED_DATA, 'fineweb-300.jsonl'), 'utf8')).split('\n');
    await writeFile(input, `${lines.slice(0, 20).join('\n')}\n`);
    const args = ['pack', input, '--out', out, '--workers', '0', '--seq-len', '256', '--quiet'];
    expect((await runCli(args)).code).toBe(0);
    const again = await runCli(args);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/is already complete/);
    await writeFile(input, `${lines.slice(0, 21).join('\n')}\n`);
    const changed = await runCli(args);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/different options/);
  });

  it('refuses a non-empty --out unless --overwrite', async () => {
    const out = await tempDir();
    await writeFile(join(out, 'precious.txt'), 'keep me');
    const refused = await runCli([
      'pack',
      join(SHARED_DATA, 'fineweb-300.jsonl'),
      '--out',
      out,
      '--workers',
      '0',
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(out);
    expect(refused.stderr).toContain('--overwrite');
    expect(existsSync(join(out, 'precious.txt'))).toBe(true);
    const forced = await runCli([
      'pack',
      join(SHARED_DATA, 'fineweb-300.jsonl'),
      '--out',
      out,
      '--workers',
      '0',
      '--overwrite',
    ]);
    expect(forced.code).toBe(0);
    expect(existsSync(join(out, 'precious.txt'))).toBe(false);
  });

  it('names the file and line of a malformed JSON line, and skips it with --on-error skip', async () => {
    const dir = await tempDir();
    const input = join(dir, 'bad.jsonl');
    await writeFile(input, '{"id":"a","text":"one"}\n{"id":"b","text":\n{"id":"c","text":"three"}\n');
    const failed = await runCli(['pack', input, '--out', join(dir, 'out1'), '--workers', '0']);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain(`${input}:2`);
    const skipped = await runCli([
      'pack',
      input,
      '--out',
      join(dir, 'out2'),
      '--workers',
      '0',
      '--on-error',
      'skip',
      '--tail',
      'keep',
      '--json',
    ]);
    expect(skipped.code).toBe(0);
    expect(JSON.parse(skipped.stdout.toString())).toMatchObject({ documents: 2, skippedRecords: 1 });
  });

  it('names the missing text field and the fields that exist', async () => {
    const result = await runCli([
      'pack',
      join(SHARED_DATA, 'cc-warc-100.zstd.parquet'),
      '--out',
      await tempDir(),
      '--workers',
      '0',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('text');
    expect(result.stderr).toContain('contents');
    expect(result.stderr).toContain('--text-field');
  });

  it('rejects an unknown tokenizer saying what is accepted', async () => {
    const result = await runCli([
      'pack',
      join(SHARED_DATA, 'fineweb-300.jsonl'),
      '--out',
      await tempDir(),
      '--tokenizer',
      'llama9',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('o200k_base');
    expect(result.stderr).toContain('tiktoken:');
  });

  it('leaves no index after kill -9, and a rerun of the same command completes', async () => {
    const out = await tempDir();
    const args = [
      'pack',
      join(SHARED_DATA, 'wikipedia-2349.jsonl'),
      '--out',
      out,
      '--shard-size',
      '64KiB',
      '--seq-len',
      '256',
      '--workers',
      '1',
    ];
    const child = startCli(args);
    const finished = waitCli(child);
    while (!(await readdir(out).catch(() => [])).some((name) => name.startsWith('shard.'))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await finished;
    expect(existsSync(join(out, 'index.json'))).toBe(false);
    const rerun = await runCli(args);
    expect(rerun.code).toBe(0);
    const inspect = await runCli(['inspect', out, '--json']);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout.toString()).shards).toBeGreaterThan(1);
  });
});
