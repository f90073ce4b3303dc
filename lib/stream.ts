// Highland interop: async iterables and Node streams in and out, bounded concurrent maps, draining.
// highland 2.13 cannot consume an async iterable directly (DEPENDENCIES.md), so everything goes through here.
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Stage } from './types.js';

/**
 * highland itself, for every module of the library: loaded with `require`, because an `import` of a CommonJS
 * module makes Node lex its source for named exports first, and lexing highland's 140 KB (with the lexer's
 * own optimisation) is a tenth of a second of CPU at every start.
 */
export const highland: typeof import('highland') = createRequire(import.meta.url)('highland');
const _ = highland;

/** A lazy highland stream that pulls one value from `iterable` each time downstream asks for one. */
export function fromAsyncIterable<T>(iterable: AsyncIterable<T> | Iterable<T>): Highland.Stream<T> {
  const iterator =
    Symbol.asyncIterator in iterable
      ? (iterable as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (iterable as Iterable<T>)[Symbol.iterator]();
  let finished = false;
  const stream = _<T>((push, next) => {
    Promise.resolve(iterator.next()).then(
      (result) => {
        if (result.done) {
          finished = true;
          push(null, _.nil);
        } else {
          push(null, result.value);
          next();
        }
      },
      (error: unknown) => {
        finished = true;
        push(error instanceof Error ? error : new Error(String(error)));
        push(null, _.nil);
      },
    );
  });
  // highland 2 has no public hook for a generator stream being destroyed (e.g. after `.take(n)`);
  // its own Readable wrapper uses `_destructors`, so we do too, to close the iterator (and its file).
  (stream as unknown as { _destructors: Array<() => void> })._destructors.push(() => {
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  });
  return stream;
}

/** Pulls a highland stream as an async iterable; an error in the stream is thrown from the loop. */
export async function* toAsyncIterable<T>(stream: Highland.Stream<T>): AsyncGenerator<T> {
  try {
    while (true) {
      const value = await new Promise<T | Highland.Nil>((resolve, reject) => {
        stream.pull((error, item) => (error ? reject(error) : resolve(item as T | Highland.Nil)));
      });
      if (_.isNil(value)) return;
      yield value as T;
    }
  } finally {
    stream.destroy();
  }
}

/** A highland stream over a Node Readable (its backpressure is kept). */
export function fromNodeReadable<T>(readable: Readable): Highland.Stream<T> {
  return _<T>(readable);
}

/** A Node Readable over a highland stream, e.g. to pipe bytes into process.stdout. */
export function toNodeReadable<T>(stream: Highland.Stream<T>, objectMode = true): Readable {
  return stream.toNodeStream({ objectMode }) as Readable;
}

/**
 * Each array of the stream as its items, in order: what highland's `sequence()` does for arrays, without the
 * stream it builds per array (about 45 us each: more than the rest of a request's work when arrays are small).
 */
export function flattenArrays<T>(): Stage<T[], T> {
  return (input) =>
    input.consume<T>((error, items, push, next) => {
      if (error) {
        push(error);
        next();
      } else if (_.isNil(items)) {
        push(null, _.nil);
      } else {
        for (const item of items as T[]) push(null, item);
        next();
      }
    });
}

/** At most `limit` calls of `fn` in flight; results come out in completion order. */
export function mapUnordered<A, B>(limit: number, fn: (item: A) => Promise<B>): Stage<A, B> {
  return (input) => input.map((item) => _(fn(item))).mergeWithLimit(limit);
}

/** At most `limit` calls of `fn` in flight; results come out in input order. */
export function mapOrdered<A, B>(limit: number, fn: (item: A) => Promise<B>): Stage<A, B> {
  return (input) => input.map((item) => _(fn(item))).parallel(limit);
}

/** Consumes a stream to the end; rejects with its first error. */
export function drain<T>(stream: Highland.Stream<T>, onItem?: (item: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const tapped = onItem ? stream.doto(onItem) : stream;
    tapped.stopOnError(reject).done(resolve);
  });
}

/** Stages composed left to right into one stage: `pipe(a, b, c)` is `(s) => s.through(a).through(b).through(c)`. */
export function pipe<A>(): Stage<A, A>;
export function pipe<A, B>(ab: Stage<A, B>): Stage<A, B>;
export function pipe<A, B, C>(ab: Stage<A, B>, bc: Stage<B, C>): Stage<A, C>;
export function pipe<A, B, C, D>(ab: Stage<A, B>, bc: Stage<B, C>, cd: Stage<C, D>): Stage<A, D>;
export function pipe<A, B, C, D, E>(
  ab: Stage<A, B>,
  bc: Stage<B, C>,
  cd: Stage<C, D>,
  de: Stage<D, E>,
): Stage<A, E>;
export function pipe<A, B, C, D, E, F>(
  ab: Stage<A, B>,
  bc: Stage<B, C>,
  cd: Stage<C, D>,
  de: Stage<D, E>,
  ef: Stage<E, F>,
): Stage<A, F>;
export function pipe<A>(...stages: Array<Stage<A, A>>): Stage<A, A>;
export function pipe(...stages: Array<Stage<unknown, unknown>>): Stage<unknown, unknown> {
  return (input) => stages.reduce((stream, stage) => stream.through(stage), input);
}
