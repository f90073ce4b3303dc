// A tokenizer spec as a run records it: `tiktoken:PATH` with PATH made absolute, so megadocs.json names the
// file from any directory, and in the run identity the file's sha256, so a rerun does not depend on the spelling.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TIKTOKEN_PREFIX } from './encoders.js';

/** `tiktoken:PATH` with PATH resolved against the working directory; other specs as they are. */
export function absoluteTokenizerSpec(spec: string): string {
  if (!spec.startsWith(TIKTOKEN_PREFIX) || spec.length === TIKTOKEN_PREFIX.length) return spec;
  return `${TIKTOKEN_PREFIX}${path.resolve(spec.slice(TIKTOKEN_PREFIX.length))}`;
}

/**
 * What decides the tokens: a named encoding's name, a rank file's contents (`tiktoken:sha256:HEX`). A file that
 * cannot be read keeps its spec: the step that loads the tokenizer reports it, naming the file.
 */
export async function tokenizerIdentity(spec: string): Promise<string> {
  if (!spec.startsWith(TIKTOKEN_PREFIX)) return spec;
  try {
    const contents = await readFile(spec.slice(TIKTOKEN_PREFIX.length));
    return `${TIKTOKEN_PREFIX}sha256:${createHash('sha256').update(contents).digest('hex')}`;
  } catch {
    return spec;
  }
}
