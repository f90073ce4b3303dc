// Phase one of `megadocs run`, its end: every part of every megadoc as a document to tokenize, then each
// stream (real, synthetic) through its own steps (pack, transforms) and parked on disk until both are complete.
import { join } from 'node:path';
import { type SequenceSpillReader, SequenceSpillWriter } from '../sequence-spill.js';
import { highland as _, toAsyncIterable } from '../stream.js';
import {
  type Doc,
  type Megadoc,
  type Sequence,
  STREAM_NAMES,
  type Stage,
  type StreamName,
  type TokenizedDoc,
} from '../types.js';
import { type AnyStep, throughSteps } from './steps.js';

const REAL: readonly StreamName[] = ['real'];
const SYNTHETIC: readonly StreamName[] = ['synthetic'];

function part(streams: readonly StreamName[], megadoc: Megadoc, index: number, text: string): Doc {
  return { id: `${megadoc.id}/${index}`, text, streams };
}

/**
 * Every part of every megadoc as one document to tokenize, with the stream(s) it belongs to. An
 * original that sits unchanged inside the megadoc right after it (stitch with an EOS separator) is
 * tokenized once and goes to both streams; each stream still sees its parts in order.
 */
export function partsToTokenize(): Stage<Megadoc, Doc> {
  return (input) => {
    let held: Megadoc | undefined;
    return input.consume<Doc>((error, item, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      const release = () => {
        if (held) push(null, part(REAL, held, 0, held.parts[0]!));
        held = undefined;
      };
      if (_.isNil(item)) {
        release();
        push(null, _.nil);
        return;
      }
      const megadoc = item as Megadoc;
      if (megadoc.stream === 'real') {
        release();
        held = megadoc;
      } else {
        const shared = held?.id === megadoc.id ? megadoc.parts.indexOf(held.parts[0]!) : -1;
        if (shared < 0) release();
        held = undefined;
        megadoc.parts.forEach((text, index) => {
          push(null, part(index === shared ? STREAM_NAMES : SYNTHETIC, megadoc, index, text));
        });
      }
      next();
    });
  };
}

/**
 * Phase one's end: each stream (real, synthetic) of the tokenized parts through its own steps (pack, then
 * the `sequences` transforms), parked on disk until both are complete.
 */
export async function parkStreams(
  tokenized: Highland.Stream<TokenizedDoc>,
  streamSteps: (stream: StreamName) => AnyStep[],
  spillDir: string,
): Promise<Record<StreamName, SequenceSpillReader>> {
  const writers = await Promise.all(
    STREAM_NAMES.map((stream) => SequenceSpillWriter.create(join(spillDir, stream))),
  );
  // Both forks exist before either pulls, so each sees every document (highland forks move in lockstep).
  const branches = STREAM_NAMES.map((stream) =>
    throughSteps<Sequence>(
      tokenized.fork().filter((doc) => doc.streams?.includes(stream) === true),
      streamSteps(stream),
    ),
  );
  try {
    return Object.fromEntries(
      await Promise.all(
        STREAM_NAMES.map(async (stream, position) => {
          const writer = writers[position]!;
          for await (const sequence of toAsyncIterable(branches[position]!)) await writer.write(sequence);
          return [stream, await writer.finish()] as const;
        }),
      ),
    ) as Record<StreamName, SequenceSpillReader>;
  } catch (error) {
    // The other branch may still be waiting on its fork: stop the chain upstream (requests, workers).
    tokenized.destroy();
    throw error;
  } finally {
    await Promise.all(writers.map((writer) => writer.close()));
  }
}
