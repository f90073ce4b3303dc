// Unit tests of the pack stage: exact cuts, boundaries, and the three tail modes.
import _ from 'highland';
import { describe, expect, it } from 'vitest';
import { newPackStats, type PackOptions, packStage } from '../lib/pack.js';
import type { Sequence, TokenizedDoc } from '../lib/types.js';

function doc(id: string, from: number, length: number): TokenizedDoc {
  return { id, tokens: Uint32Array.from({ length }, (_v, i) => from + i) };
}

async function packAll(docs: TokenizedDoc[], options: PackOptions): Promise<Sequence[]> {
  return (await _(docs).through(packStage(options)).collect().toPromise(Promise)) as Sequence[];
}

describe('packStage', () => {
  const docs = [doc('a', 0, 5), doc('b', 100, 7), doc('c', 200, 2)];

  it('cuts the concatenation into sequences of exactly seqLen and drops the tail', async () => {
    const stats = newPackStats();
    const sequences = await packAll(docs, { seqLen: 4, tail: 'drop', boundaries: false, stats });
    expect(sequences.map((s) => Array.from(s.tokens))).toEqual([
      [0, 1, 2, 3],
      [4, 100, 101, 102],
      [103, 104, 105, 106],
    ]);
    expect(stats).toEqual({ documents: 3, tokens: 14, sequences: 3, droppedTokens: 2, paddedTokens: 0 });
  });

  it('records segment starts, always beginning with 0', async () => {
    const sequences = await packAll(docs, { seqLen: 4, tail: 'keep', boundaries: true });
    expect(sequences.map((s) => Array.from(s.boundaries ?? []))).toEqual([[0], [0, 1], [0], [0]]);
    expect(Array.from(sequences[3].tokens)).toEqual([200, 201]);
  });

  it('pads the tail with the pad id and counts the padding', async () => {
    const stats = newPackStats();
    const sequences = await packAll(docs, { seqLen: 4, tail: 'pad', padId: 9, boundaries: false, stats });
    expect(Array.from(sequences[3].tokens)).toEqual([200, 201, 9, 9]);
    expect(stats.paddedTokens).toBe(2);
  });

  it('never emits an empty sequence when the input divides evenly or is empty', async () => {
    expect(await packAll([doc('a', 0, 8)], { seqLen: 4, tail: 'keep', boundaries: false })).toHaveLength(2);
    expect(await packAll([], { seqLen: 4, tail: 'pad', padId: 0, boundaries: false })).toHaveLength(0);
  });

  it('splits one long document across many sequences without copying errors', async () => {
    const long = doc('long', 0, 10_000);
    const sequences = await packAll([long], { seqLen: 4096, tail: 'keep', boundaries: false });
    const joined = Buffer.concat(sequences.map((s) => Buffer.from(s.tokens.buffer, 0, s.tokens.byteLength)));
    expect(Buffer.compare(joined, Buffer.from(long.tokens.buffer))).toBe(0);
  });

  it('rejects a bad seqLen and a pad tail without a pad id', () => {
    expect(() => packStage({ seqLen: 0, tail: 'drop', boundaries: false })).toThrow(/--seq-len/);
    expect(() => packStage({ seqLen: 8, tail: 'pad', boundaries: false })).toThrow(/pad token/);
  });
});
