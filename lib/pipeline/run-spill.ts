// Phase one of `megadocs run`: every part of every megadoc tokenized in order, then each stream (real,
// synthetic) packed on its own into fixed-length sequences and parked on disk until both are complete.
import { join } from 'node:path';
import _ from 'highland';
import type { Megadoc } from '../assemble/index.js';
import type { RunConfig } from '../config.js';
import { STREAM_NAMES, type StreamName } from '../mix.js';
import { packStage } from '../pack.js';
import { type SequenceSpillReader, SequenceSpillWriter } from '../spill.js';
import { toAsyncIterable } from '../stream.js';
import type { TokenizerFacts } from '../tokenize/encoders.js';
import { tokenizeStage } from '../tokenize/stage.js';
import type { Doc, Stage } from '../types.js';
import type { RunProgress } from './run-stats.js';

/** The streams a tokenized part goes to, written before the first `/` of its id. */
type PartStreams = StreamName | 'both';

function part(streams: PartStreams, megadoc: Megadoc, index: number, text: string): Doc {
  return { id: `${streams}/${megadoc.id}/${index}`, text };
}

/**
 * Every part of every megadoc as one document to tokenize, its id naming the stream(s) it belongs to. An
 * original that sits unchanged inside the megadoc right after it (stitch with an EOS separator) is
 * tokenized once and goes to both streams; each stream still sees its parts in order.
 */
export function partsToTokenize(): Stage<Megadoc, Doc> {
  let held: Megadoc | undefined;
  return (input) =>
    input.consume<Doc>((error, item, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      const release = () => {
        if (held) push(null, part('real', held, 0, held.parts[0]!));
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
          push(null, part(index === shared ? 'both' : 'synthetic', megadoc, index, text));
        });
      }
      next();
    });
}

/** Phase one: tokenize every part in order, pack each stream on its own, park the sequences on disk. */
export async function packToSpills(
  megadocs: Highland.Stream<Megadoc>,
  config: RunConfig,
  tokenizer: TokenizerFacts,
  spillDir: string,
  progress: RunProgress,
): Promise<Record<StreamName, SequenceSpillReader>> {
  const writers = await Promise.all(
    STREAM_NAMES.map((stream) => SequenceSpillWriter.create(join(spillDir, stream))),
  );
  const tokenized = megadocs.through(partsToTokenize()).through(
    tokenizeStage({
      tokenizer: config.tokenizer,
      workers: config.workers,
      eos: config.eos,
      bos: config.bos,
    }),
  );
  // Both forks exist before either pulls, so each sees every document (highland forks move in lockstep).
  const branches = STREAM_NAMES.map((stream) =>
    tokenized
      .fork()
      .filter((doc) => doc.id.startsWith(`${stream}/`) || doc.id.startsWith('both/'))
      .through(
        packStage({
          seqLen: config.seqLen,
          tail: config.tail,
          boundaries: config.boundaries,
          padId: tokenizer.eosId,
          stats: progress.pack[stream],
        }),
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
