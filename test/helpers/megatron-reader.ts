// An independent reader of Megatron-LM indexed datasets, written from the format's facts (FORMATS.md) as the
// tests' oracle: it checks every field a Megatron loader relies on and returns each entry's token ids.
import { readFile } from 'node:fs/promises';

export interface MegatronPair {
  dtypeCode: number;
  /** The tokens of each entry (one sequence per document). */
  entries: Uint32Array[];
}

const ITEM_BYTES: Record<number, number> = { 4: 4, 8: 2 };

/** Reads PREFIX.bin + PREFIX.idx and throws on anything Megatron's loader would misread. */
export async function readMegatronPair(prefix: string): Promise<MegatronPair> {
  const idx = await readFile(`${prefix}.idx`);
  const bin = await readFile(`${prefix}.bin`);
  if (idx.toString('latin1', 0, 9) !== 'MMIDIDX\0\0') throw new Error('bad magic');
  if (idx.readBigUInt64LE(9) !== 1n) throw new Error('bad version');
  const dtypeCode = idx.readUInt8(17);
  const itemBytes = ITEM_BYTES[dtypeCode];
  if (itemBytes === undefined) throw new Error(`dtype code ${dtypeCode} is not one megadocs writes`);
  const sequences = Number(idx.readBigUInt64LE(18));
  const documents = Number(idx.readBigUInt64LE(26));
  if (documents !== sequences + 1) throw new Error('one sequence per document expected');
  if (idx.length !== 34 + sequences * 4 + sequences * 8 + documents * 8) throw new Error('idx size');
  const entries: Uint32Array[] = [];
  let expectedPointer = 0;
  for (let at = 0; at < sequences; at += 1) {
    const length = idx.readInt32LE(34 + 4 * at);
    const pointer = Number(idx.readBigInt64LE(34 + 4 * sequences + 8 * at));
    if (pointer !== expectedPointer)
      throw new Error(`entry ${at}: pointer ${pointer}, expected ${expectedPointer}`);
    const values = new Uint32Array(length);
    for (let token = 0; token < length; token += 1) {
      const offset = pointer + token * itemBytes;
      values[token] = itemBytes === 2 ? bin.readUInt16LE(offset) : bin.readInt32LE(offset);
    }
    entries.push(values);
    expectedPointer = pointer + length * itemBytes;
  }
  if (expectedPointer !== bin.length)
    throw new Error(`bin has ${bin.length} bytes, idx covers ${expectedPointer}`);
  for (let at = 0; at < documents; at += 1) {
    if (Number(idx.readBigInt64LE(34 + 12 * sequences + 8 * at)) !== at)
      throw new Error(`document index ${at}`);
  }
  return { dtypeCode, entries };
}
