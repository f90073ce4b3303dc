// A pool of tokenizer worker threads: sends each batch of texts to the least loaded worker, gets the ids
// back as transferred Uint32Arrays, and turns a load failure or a crash into one MegadocsError for all callers.
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { type ErrorCode, MegadocsError } from '../errors.js';
import { startWorker, stopWorker } from '../worker-entry.js';
import type { CacheDir } from './table-cache.js';
import type { TokenTables } from './token-tables.js';

/** What the encoders need to know. */
export interface EncoderSettings {
  tokenizer: string;
  /** Prepend the encoder's BOS id to each text (when the encoding has one); absent: as the model does by default. */
  bos?: boolean;
  /** Append the encoder's EOS id to each text. */
  eos: boolean;
  /** The EOS id to append instead of the encoder's (resolved from --eos-token). */
  eosId?: number;
  /** Where the lookup tables are cached (see CacheDir: default ~/.cache/megadocs; false: not cached). */
  cacheDir?: CacheDir;
}

/** What every worker is started with. */
export interface WorkerSettings extends EncoderSettings {
  /** `tables` builds the shared lookup tables once; `encode` workers encode with them. */
  role: 'tables' | 'encode';
}

export interface BatchRequest {
  type: 'batch';
  id: number;
  texts: string[];
}

/** What an encode worker is sent: the tables (once, shared memory), then batches. */
export type WorkerMessage = { type: 'tables'; tables: TokenTables } | BatchRequest;

/** The ids of a batch, concatenated (BOS/EOS included); text i ends at `ends[i]`. */
export interface EncodedBatch {
  tokens: Uint32Array;
  ends: Uint32Array;
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
}

/** A worker's messages: the encoder loaded or did not, a batch was encoded or was not. */
export type BatchReply =
  | { type: 'tables'; tables: TokenTables }
  | { type: 'ready' }
  | { type: 'load-failed'; error: SerializedError }
  | ({ type: 'batch'; id: number } & EncodedBatch)
  | { type: 'batch-failed'; id: number; error: SerializedError };

export interface TokenizerPoolOptions extends EncoderSettings {
  workers: number;
  /** Heap limits of each worker; a worker that exceeds them crashes and the pool fails. */
  resourceLimits?: ResourceLimits;
}

interface PendingBatch {
  resolve: (batch: EncodedBatch) => void;
  reject: (error: Error) => void;
}

interface WorkerSlot {
  worker: Worker;
  pending: Map<number, PendingBatch>;
  loaded: boolean;
}

/**
 * A worker holds ~35 MB live (its encoder and one batch) but V8's default sizing lets its heap grow well past
 * that before a major GC; these limits keep the process's RSS flat over long inputs (bench/pack).
 */
const WORKER_HEAP_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 512 };

export class TokenizerPool {
  readonly size: number;
  private readonly slots: WorkerSlot[];
  private readonly loaded: Promise<void>;
  private signalLoaded!: () => void;
  private signalLoadFailed!: (error: Error) => void;
  private failure?: MegadocsError;
  private closed = false;
  private nextId = 0;
  private readonly builder: Worker;
  private tablesBuilt = false;

  constructor(private readonly options: TokenizerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new MegadocsError(
        'BAD_OPTION',
        `a tokenizer pool needs at least 1 worker, got ${options.workers}`,
        {
          where: 'workers',
          hint: 'Pass workers >= 1 (or 0 to the tokenize stage to encode on the main thread)',
        },
      );
    }
    this.size = options.workers;
    this.loaded = new Promise((resolve, reject) => {
      this.signalLoaded = resolve;
      this.signalLoadFailed = reject;
    });
    // Nobody may be waiting for the load when it fails; encode() and ready() report the failure.
    this.loaded.catch(() => {});
    const start = (role: WorkerSettings['role']) =>
      startWorker(import.meta.url, 'worker', {
        workerData: {
          role,
          tokenizer: options.tokenizer,
          bos: options.bos,
          eos: options.eos,
          eosId: options.eosId,
          cacheDir: options.cacheDir,
        } satisfies WorkerSettings,
        resourceLimits: options.resourceLimits ?? WORKER_HEAP_LIMITS,
      });
    // One worker loads the rank table and builds the lookup tables; the encoders start meanwhile and share them.
    this.builder = start('tables');
    this.builder.on('message', (reply: BatchReply) => {
      if (reply.type === 'tables') {
        this.tablesBuilt = true;
        for (const slot of this.slots)
          slot.worker.postMessage({ type: 'tables', tables: reply.tables } satisfies WorkerMessage);
      } else if (reply.type === 'load-failed') {
        this.fail(new MegadocsError(reply.error.code, reply.error.message));
      }
    });
    this.builder.on('error', (error) => this.fail(this.crashError(error.message)));
    this.builder.on('exit', (code) => {
      if (!this.closed && !this.tablesBuilt) this.fail(this.crashError(`it exited with code ${code}`));
    });
    this.slots = Array.from({ length: options.workers }, () => {
      const worker = start('encode');
      const slot: WorkerSlot = { worker, pending: new Map(), loaded: false };
      worker.on('message', (reply: BatchReply) => this.onReply(slot, reply));
      worker.on('error', (error) => this.fail(this.crashError(error.message)));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(this.crashError(`it exited with code ${code}`));
      });
      return slot;
    });
  }

  /** Resolves when every worker has loaded the encoder; rejects with the load error. */
  ready(): Promise<void> {
    return this.loaded;
  }

  /** Encodes `texts` on the least loaded worker. */
  encode(texts: string[]): Promise<EncodedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new MegadocsError('TOKENIZER', 'the tokenizer pool is closed'));
    const slot = this.slots.reduce((least, candidate) =>
      candidate.pending.size < least.pending.size ? candidate : least,
    );
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage({ type: 'batch', id, texts } satisfies BatchRequest);
    });
  }

  /** Stops every worker; pending batches reject. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectPending(this.failure ?? new MegadocsError('TOKENIZER', 'the tokenizer pool was closed'));
    await Promise.all([this.builder, ...this.slots.map((slot) => slot.worker)].map(stopWorker));
  }

  private onReply(slot: WorkerSlot, reply: BatchReply): void {
    if (reply.type === 'ready') {
      slot.loaded = true;
      if (this.slots.every((each) => each.loaded)) this.signalLoaded();
    } else if (reply.type === 'load-failed') {
      this.fail(new MegadocsError(reply.error.code, reply.error.message));
    } else if (reply.type === 'batch' || reply.type === 'batch-failed') {
      const pending = slot.pending.get(reply.id);
      slot.pending.delete(reply.id);
      if (reply.type === 'batch') pending?.resolve({ tokens: reply.tokens, ends: reply.ends });
      else pending?.reject(new MegadocsError(reply.error.code, reply.error.message));
    }
    // An idle worker must not keep the process alive (e.g. when a consumer abandons the stream).
    if (slot.loaded && slot.pending.size === 0) slot.worker.unref();
  }

  private fail(error: MegadocsError): void {
    if (this.failure || this.closed) return;
    this.failure = error;
    this.signalLoadFailed(error);
    void this.close();
  }

  private rejectPending(error: Error): void {
    for (const slot of this.slots) {
      for (const pending of slot.pending.values()) pending.reject(error);
      slot.pending.clear();
    }
  }

  private crashError(detail: string): MegadocsError {
    return new MegadocsError(
      'TOKENIZER',
      `a tokenizer worker for ${this.options.tokenizer} crashed: ${detail}`,
      {
        hint: 'Check memory limits and the tokenizer file; run with workers 0 to encode on the main thread and see the error there',
      },
    );
  }
}
