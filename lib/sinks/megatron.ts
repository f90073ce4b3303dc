// Writes Megatron-LM indexed datasets: MegatronWriter (tokens appended to a temporary .bin, the .idx built from
// the entry lengths; .bin renamed first, .idx last) and megatronSink, the sink stage: one entry per document.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { MegadocsError } from '../errors.js';
import { toAsyncIterable } from '../stream.js';
import { AtomicFiles } from './atomic.js';
import {
  checkMegatronPrefix,
  MEGATRON_HEADER_BYTES,
  MEGATRON_ITEM_BYTES,
  type MegatronDtype,
  megatronFiles,
  megatronIndexPieces,
} from './megatron-format.js';
import { TokenFile } from './token-file.js';

export interface MegatronWriterOptions {
  dir: string;
  /** The pair is DIR/PREFIX.bin + DIR/PREFIX.idx. */
  prefix: string;
  dtype: MegatronDtype;
}

export interface MegatronSummary {
  /** Entries of the index (documents, or whole megadocs). */
  documents: number;
  tokens: number;
  binBytes: number;
  idxBytes: number;
}

/**
 * A Megatron pair being written. Every entry's tokens go to a temporary .bin as they come (only the lengths
 * stay in memory, 4 bytes an entry); finish() renames the .bin, then writes the .idx atomically, so a pair
 * whose .idx is there is complete. abort() leaves no temporary file and no .idx.
 */
export class MegatronWriter {
  private lengths = new Int32Array(1024);
  private count = 0;
  private closed = false;

  private constructor(
    private readonly options: MegatronWriterOptions,
    private readonly files: AtomicFiles,
    private readonly bin: TokenFile,
    private readonly idxPath: string,
  ) {}

  /** Creates the directory, removes a stale .idx (the mark of a complete pair) and opens the temporary .bin. */
  static async open(options: MegatronWriterOptions): Promise<MegatronWriter> {
    const names = megatronFiles(checkMegatronPrefix(options.prefix));
    await mkdir(options.dir, { recursive: true });
    const idxPath = path.join(options.dir, names.idx);
    await rm(idxPath, { force: true });
    const files = new AtomicFiles();
    const bin = await TokenFile.create(
      files,
      path.join(options.dir, names.bin),
      MEGATRON_ITEM_BYTES[options.dtype],
    );
    return new MegatronWriter(options, files, bin, idxPath);
  }

  /** Appends one entry (an empty one is skipped: Megatron's builder adds none either). */
  async write(tokens: Uint32Array): Promise<void> {
    if (this.closed)
      throw new MegadocsError('BAD_INPUT', 'write after finish or abort', { where: this.bin.path });
    if (tokens.length === 0) return;
    if (tokens.length >= 2 ** 31) {
      throw new MegadocsError('BAD_INPUT', `entry ${this.count} has ${tokens.length} tokens`, {
        where: this.bin.path,
        hint: 'Megatron stores entry lengths as int32: split the document below 2^31 tokens',
      });
    }
    if (this.count === this.lengths.length) {
      const grown = new Int32Array(this.lengths.length * 2);
      grown.set(this.lengths);
      this.lengths = grown;
    }
    this.lengths[this.count] = tokens.length;
    this.count += 1;
    await this.bin.append(tokens);
  }

  /** Lands PREFIX.bin, then PREFIX.idx (the pair is complete only then). */
  async finish(): Promise<MegatronSummary> {
    if (this.closed) throw new MegadocsError('BAD_INPUT', 'finish called twice', { where: this.bin.path });
    this.closed = true;
    const binBytes = await this.bin.land();
    const lengths = this.lengths.subarray(0, this.count);
    const dtype = this.options.dtype;
    await this.files.write(
      this.idxPath,
      (async function* () {
        yield* megatronIndexPieces(lengths, dtype);
      })(),
    );
    return {
      documents: this.count,
      tokens: this.bin.tokens,
      binBytes,
      idxBytes: MEGATRON_HEADER_BYTES + this.count * 12 + (this.count + 1) * 8,
    };
  }

  /** Stops writing: removes the temporary .bin; writes no .idx. */
  async abort(): Promise<void> {
    if (!this.closed) await this.bin.remove();
    this.closed = true;
    await this.files.removeTemporaries();
  }
}

export interface MegatronSinkOptions extends MegatronWriterOptions {
  /** Told each entry's token count as it is written (progress counters). */
  onEntry?: (tokens: number) => void;
}

/**
 * The Megatron sink stage: every item (a document, or a whole megadoc with its parts each ending in EOD) is
 * one entry of the index, so Megatron's shuffle by entry never splits one; resolves when the .idx is written.
 */
export function megatronSink(
  options: MegatronSinkOptions,
): <T extends { tokens: Uint32Array }>(input: Highland.Stream<T>) => Promise<MegatronSummary> {
  return async <T extends { tokens: Uint32Array }>(input: Highland.Stream<T>) => {
    const writer = await MegatronWriter.open(options);
    try {
      for await (const entry of toAsyncIterable(input)) {
        await writer.write(entry.tokens);
        options.onEntry?.(entry.tokens.length);
      }
      return await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  };
}
