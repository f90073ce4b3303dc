// A tokenizer spec as a run records it: `tiktoken:PATH` and a tokenizer.json PATH made absolute (hf:... as is), so
// megadocs.json names the file from any directory, and in the run identity the files' sha256, so a rerun does
// not depend on the spelling.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  isTokenizerJsonPath,
  isTokenizerJsonSpec,
  TIKTOKEN_PREFIX,
  tokenizerJsonContents,
} from './encoders.js';

/** `tiktoken:PATH` and tokenizer.json paths resolved against the working directory; other specs as they are. */
export function absoluteTokenizerSpec(spec: string): string {
  if (isTokenizerJsonPath(spec)) return path.resolve(spec);
  if (!spec.startsWith(TIKTOKEN_PREFIX) || spec.length === TIKTOKEN_PREFIX.length) return spec;
  return `${TIKTOKEN_PREFIX}${path.resolve(spec.slice(TIKTOKEN_PREFIX.length))}`;
}

const sha256 = (contents: Buffer) => createHash('sha256').update(contents).digest('hex');

/**
 * What decides the tokens: a named encoding's name, a rank file's contents (`tiktoken:sha256:HEX`), a
 * tokenizer.json's and its tokenizer_config.json's (`tokenizer.json:sha256:HEX`). A file that cannot be read
 * keeps its spec: the step that loads the tokenizer reports it, naming the file.
 */
export async function tokenizerIdentity(spec: string): Promise<string> {
  try {
    if (isTokenizerJsonSpec(spec))
      return `tokenizer.json:sha256:${sha256(await tokenizerJsonContents(spec))}`;
    if (!spec.startsWith(TIKTOKEN_PREFIX)) return spec;
    return `${TIKTOKEN_PREFIX}sha256:${sha256(await readFile(spec.slice(TIKTOKEN_PREFIX.length)))}`;
  } catch {
    return spec;
  }
}
