// The library's runtime options that the CLI takes from the environment, read once here: MEGADOCS_CACHE_DIR
// (else $XDG_CACHE_HOME/megadocs; `off`: no cache) for the token-table cache, MEGADOCS_ZSTD for the zstd engine,
// and for `--tokenizer hf:` HF_ENDPOINT, HF_TOKEN and the Hugging Face cache (HF_HUB_CACHE, HF_HOME).
import { homedir } from 'node:os';
import path from 'node:path';
import { hubCacheDir } from '../lib/backends/local-model.js';
import { checkZstdEngine } from '../lib/codecs/zstd.js';
import type { RuntimeOptions } from '../lib/config.js';
import { hubOptionsFromEnv } from '../lib/hub/client.js';

/** Unset variables leave the library's defaults (~/.cache/megadocs, the native zstd engine when it loads). */
export function runtimeOptionsFromEnv(env: Record<string, string | undefined>): RuntimeOptions {
  const configured = env.MEGADOCS_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME;
  const cacheDir =
    configured === 'off' ? false : configured || (xdg ? path.join(xdg, 'megadocs') : undefined);
  const engine = env.MEGADOCS_ZSTD;
  return {
    cacheDir,
    zstdEngine: engine ? checkZstdEngine(engine, 'MEGADOCS_ZSTD') : undefined,
    hubTokenizer: { hub: hubOptionsFromEnv(env), cacheDir: hubCacheDir(env, homedir()) },
  };
}
