// The tokenize and pack steps that `pack` and `run` both build from their configs' token fields, so
// both commands tokenize and cut sequences the same way.
import { type PackStats, packStage, type TailMode } from '../pack.js';
import { tokenizeStage } from '../tokenize/stage.js';
import type { CacheDir } from '../tokenize/table-cache.js';
import type { Doc, Sequence, TokenizedDoc } from '../types.js';
import type { Step } from './steps.js';

/** The tokenize and pack fields both commands' configs have. */
export interface TokenConfig {
  tokenizer: string;
  workers: number;
  eos: boolean;
  bos?: boolean;
  eosToken?: string;
  seqLen: number;
  tail: TailMode;
  boundaries: boolean;
}

export function tokenizeStep(config: TokenConfig, cacheDir?: CacheDir): Step<Doc, TokenizedDoc> {
  return {
    name: 'tokenize',
    stage: tokenizeStage({
      tokenizer: config.tokenizer,
      workers: config.workers,
      eos: config.eos,
      bos: config.bos,
      eosToken: config.eosToken,
      cacheDir,
    }),
  };
}

/** Packs into `seqLen` sequences; `padId` fills the tail with `--tail pad` (the EOS id). */
export function packStep(config: TokenConfig, padId: number, stats: PackStats): Step<TokenizedDoc, Sequence> {
  return {
    name: 'pack',
    stage: packStage({
      seqLen: config.seqLen,
      tail: config.tail,
      boundaries: config.boundaries,
      padId,
      stats,
    }),
  };
}
