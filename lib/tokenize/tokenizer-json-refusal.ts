// The JSON of a tokenizer.json component, and the error that refuses one megadocs does not reproduce exactly,
// naming the component, what it holds and the file.
import path from 'node:path';
import { MegadocsError } from '../errors.js';

export type Json = Record<string, unknown>;

export function unsupported(file: string, component: string, detail: string): MegadocsError {
  return new MegadocsError('TOKENIZER', `unsupported ${component} in ${path.basename(file)}: ${detail}`, {
    where: file,
    hint: 'megadocs reads byte-level BPE tokenizers (Llama 3, Qwen 2/2.5/3, GPT-2, GPT-NeoX, SmolLM, OLMo 2) and SentencePiece-style BPE ones (Llama 2, Mistral, Gemma); use one of those, or o200k_base/cl100k_base/r50k_base',
  });
}

export const describeJson = (value: unknown) => JSON.stringify(value ?? null).slice(0, 200);
