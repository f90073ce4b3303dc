// What the CLI reads from the environment for the library: the cache directory (MEGADOCS_CACHE_DIR, else
// $XDG_CACHE_HOME/megadocs, `off`: none; unset: the library's ~/.cache/megadocs) and the zstd engine (MEGADOCS_ZSTD).
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runtimeOptionsFromEnv } from '../bin/environment.js';

describe('runtimeOptionsFromEnv', () => {
  it('leaves the library defaults when nothing is set', () => {
    const { hubTokenizer, ...rest } = runtimeOptionsFromEnv({});
    expect(rest).toEqual({ cacheDir: undefined, zstdEngine: undefined });
    expect(hubTokenizer!.cacheDir).toBe(path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
  });

  it('gives hf: tokenizers HF_ENDPOINT, HF_TOKEN and the Hugging Face cache (HF_HUB_CACHE, then HF_HOME/hub)', () => {
    const { hubTokenizer } = runtimeOptionsFromEnv({
      HF_ENDPOINT: 'http://127.0.0.1:9',
      HF_TOKEN: 'hf_x',
      HF_HOME: '/h',
    });
    expect(hubTokenizer).toMatchObject({
      hub: { endpoint: 'http://127.0.0.1:9', token: 'hf_x' },
      cacheDir: '/h/hub',
    });
    expect(runtimeOptionsFromEnv({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }).hubTokenizer!.cacheDir).toBe('/c');
  });

  it('takes MEGADOCS_CACHE_DIR first, then $XDG_CACHE_HOME/megadocs; off turns the cache off', () => {
    expect(runtimeOptionsFromEnv({ MEGADOCS_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }).cacheDir).toBe('/c');
    expect(runtimeOptionsFromEnv({ XDG_CACHE_HOME: '/x' }).cacheDir).toBe(path.join('/x', 'megadocs'));
    expect(runtimeOptionsFromEnv({ MEGADOCS_CACHE_DIR: '', XDG_CACHE_HOME: '/x' }).cacheDir).toBe(
      path.join('/x', 'megadocs'),
    );
    expect(runtimeOptionsFromEnv({ MEGADOCS_CACHE_DIR: 'off' }).cacheDir).toBe(false);
  });

  it('takes MEGADOCS_ZSTD=native or zstd-codec, and names the variable for anything else', () => {
    expect(runtimeOptionsFromEnv({ MEGADOCS_ZSTD: 'zstd-codec' }).zstdEngine).toBe('zstd-codec');
    expect(runtimeOptionsFromEnv({ MEGADOCS_ZSTD: 'native' }).zstdEngine).toBe('native');
    expect(() => runtimeOptionsFromEnv({ MEGADOCS_ZSTD: 'wasm' })).toThrow(
      /^MEGADOCS_ZSTD: unknown zstd engine "wasm"\. Use native or zstd-codec/,
    );
  });
});
