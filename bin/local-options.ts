// The embedded LLM's flag (--threads) and what `local:` models take from the environment, read once here:
// HF_ENDPOINT / HF_TOKEN / HF_HOME / HF_HUB_CACHE for `local:hf:` downloads, drawn as a progress line.
import { homedir } from 'node:os';
import type { Command } from 'commander';
import type { LocalRunOptions } from '../lib/backends/local-backend.js';
import { hubCacheDir } from '../lib/backends/local-model.js';
import { hubOptionsFromEnv } from '../lib/hub/client.js';
import { integerAtLeast } from './options.js';
import { formatBytes, type ProgressDisplay, rate } from './progress.js';

export function addLocalLlmOptions(command: Command): Command {
  return command.option(
    '--threads <n>',
    'CPU threads of a local: model (default: all cores but one, at most 8)',
    integerAtLeast(1),
  );
}

/** Hub access and cache from `env`, the download drawn on `display`, llama.cpp's warnings logged there. */
export function localRunOptions(
  display: ProgressDisplay,
  env: Record<string, string | undefined>,
): LocalRunOptions {
  let latest: { model: string; receivedBytes: number; totalBytes: number } | undefined;
  const started = Date.now();
  return {
    hub: hubOptionsFromEnv(env),
    cacheDir: hubCacheDir(env, homedir()),
    onDownload: (progress) => {
      if (!latest) {
        display.track(() => {
          const received = latest?.receivedBytes ?? 0;
          const perSecond = rate(received, (Date.now() - started) / 1000);
          return `download ${latest?.model}  ${formatBytes(received)} / ${formatBytes(latest?.totalBytes ?? 0)}  ${formatBytes(perSecond)}/s`;
        });
      }
      latest = progress;
    },
    onWarning: (message) => display.log(`warning: llama.cpp: ${message}`),
  };
}
