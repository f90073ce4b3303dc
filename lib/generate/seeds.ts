// Deterministic per-request sampling seeds: hash(global --seed, document key, recipe, request index),
// so a rerun, a resumed run or a run at another concurrency asks the server for the very same samples.
import { hash } from 'node:crypto';

/**
 * A seed in [0, 2^31): small enough for every server (llama.cpp reads it as uint32 and treats
 * 0xFFFFFFFF as "random"; some validate it as a signed 32-bit int).
 */
export function requestSeed(
  globalSeed: number,
  docKey: string,
  recipe: string,
  index: string | number,
): number {
  // One-shot hash: a Hash object per request costs more than the digest itself.
  const digest = hash('sha256', `${globalSeed}\u0000${docKey}\u0000${recipe}\u0000${index}`, 'buffer');
  return digest.readUInt32BE(0) & 0x7fffffff;
}
