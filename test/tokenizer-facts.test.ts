// tokenizerFacts gives writers the vocabulary size and EOS/BOS ids and strings without loading an encoder: they must be
// exactly what the loaded encoders say, for every named encoding and for a Llama 3 rank file.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEncoder, TOKENIZER_NAMES, tokenizerFacts } from '../lib/tokenize/encoders.js';
import { SHARED_TOKENIZERS } from './helpers/cli.js';

describe('tokenizerFacts', () => {
  const specs = [...TOKENIZER_NAMES, `tiktoken:${join(SHARED_TOKENIZERS, 'meta-llama-3-8B.tiktoken')}`];
  for (const spec of specs) {
    it(`agrees with the loaded encoder for ${spec.split('/').pop()}`, async () => {
      const { vocabSize, eosId, eosToken, bosId, bosToken } = await loadEncoder(spec);
      expect(await tokenizerFacts(spec)).toEqual({ vocabSize, eosId, eosToken, bosId, bosToken });
    });
  }

  it('rejects an unknown spec like loadEncoder does', async () => {
    await expect(tokenizerFacts('gpt5')).rejects.toThrow(/o200k_base/);
  });
});
