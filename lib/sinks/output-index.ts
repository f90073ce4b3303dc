// The file that lands last in a token dataset, and so marks it complete, for each output format:
// index.json (MDS, jsonl), PREFIX.idx (Megatron), memmap.json (memmap).

import { megatronFiles } from './megatron-format.js';
import { MEMMAP_INDEX } from './memmap.js';

export function completionFile(config: { format: string; prefix: string }): string {
  if (config.format === 'megatron') return megatronFiles(config.prefix).idx;
  if (config.format === 'memmap') return MEMMAP_INDEX;
  return 'index.json';
}
