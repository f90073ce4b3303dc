// The dtype token ids are written as (`--token-dtype`, config key `tokenDtype`): by default the narrowest that
// holds the vocabulary, or the one asked for (int32 for llm-foundry on PyTorch < 2.3), refused when ids would not fit.
import { MegadocsError } from '../errors.js';
import { type MegatronDtype, megatronDtype } from './megatron-format.js';

export const TOKEN_DTYPES = ['uint16', 'uint32', 'int32'] as const;
export type TokenDtype = (typeof TOKEN_DTYPES)[number];

/** One past the largest id each dtype holds. */
const ID_LIMITS: Record<TokenDtype, number> = { uint16: 2 ** 16, uint32: 2 ** 32, int32: 2 ** 31 };

/** Bytes per id. */
export const TOKEN_DTYPE_BYTES: Record<TokenDtype, 2 | 4> = { uint16: 2, uint32: 4, int32: 4 };

/** `wanted` (--token-dtype) when every id of a `vocabSize` vocabulary fits it, else the error saying so. */
function fitting(vocabSize: number, wanted: TokenDtype): TokenDtype {
  if (vocabSize > ID_LIMITS[wanted]) {
    throw new MegadocsError(
      'BAD_OPTION',
      `--token-dtype ${wanted} cannot hold the tokenizer's ids: its vocabulary has ${vocabSize.toLocaleString('en-US')} tokens, ${wanted} holds ids below ${ID_LIMITS[wanted].toLocaleString('en-US')}`,
      {
        where: 'tokenDtype',
        hint: 'Use --token-dtype int32 or uint32, or leave it out (the narrowest dtype that fits)',
      },
    );
  }
  return wanted;
}

/** MDS and memmap: `wanted` if the ids fit, by default uint16 when the vocabulary fits, else uint32. */
export function tokenDtype(vocabSize: number, wanted: TokenDtype | undefined): TokenDtype {
  return wanted ? fitting(vocabSize, wanted) : vocabSize <= ID_LIMITS.uint16 ? 'uint16' : 'uint32';
}

/** Megatron's .idx (no uint32 code; the config refuses it): `wanted`, by default Megatron's own rule. */
export function megatronTokenDtype(vocabSize: number, wanted: TokenDtype | undefined): MegatronDtype {
  return wanted ? (fitting(vocabSize, wanted) as MegatronDtype) : megatronDtype(vocabSize);
}
