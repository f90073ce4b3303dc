// Hub flags shared by the commands that read or write `hf://` datasets (--subset/--split, --push-to), and the
// Hub connection built once from HF_ENDPOINT / HF_TOKEN in the environment the command passes in.
import type { Command } from 'commander';
import { Agent } from 'undici';
import { createHubClient, type HubClient, hubOptionsFromEnv, type RetryEvent } from '../lib/hub/client.js';
import type { HubSelection } from '../lib/hub/files.js';
import { type HubLocation, parseHubUrl } from '../lib/hub/url.js';

/**
 * --subset NAME --split NAME: pick a dataset subset's split instead of naming files; --config NAME is an alias of
 * --subset (not on `run`, whose --config is its options file: a command that declared it keeps its own).
 */
export function addHubSelectionOptions(command: Command): Command {
  command.option(
    '--subset <name>',
    "hf:// inputs: the dataset subset (config) (from the card's configs:, else refs/convert/parquet)",
  );
  if (!command.options.some((option) => option.long === '--config'))
    command.option('--config <name>', 'hf:// inputs: the same as --subset');
  return command.option('--split <name>', 'hf:// inputs: the split of --subset (default train)');
}

export function hubSelectionFrom(options: Record<string, unknown>): HubSelection | undefined {
  const { subset, config, split } = options as { subset?: string; config?: string; split?: string };
  const chosen = subset ?? config;
  return chosen === undefined && split === undefined ? undefined : { config: chosen, split };
}

/** --push-to hf://datasets/ME/NAME[@BRANCH][/FOLDER]. */
export function addPushOption(command: Command): Command {
  return command.option(
    '--push-to <url>',
    'upload finished shards and the index to this Hub dataset while the run goes on (needs HF_TOKEN with write access)',
  );
}

export function pushTargetFrom(options: Record<string, unknown>): HubLocation | undefined {
  return typeof options.pushTo === 'string' ? parseHubUrl(options.pushTo) : undefined;
}

export interface HubConnection {
  client: HubClient;
  /** Closes the connection pool. */
  close(): Promise<void>;
}

/** A Hub client on its own connection pool (at most `connections` sockets per host), from HF_ENDPOINT/HF_TOKEN. */
export function connectHub(
  env: Record<string, string | undefined>,
  settings: { connections?: number; onRetry?: (event: RetryEvent) => void } = {},
): HubConnection {
  const dispatcher = new Agent({ connections: settings.connections ?? 16 });
  const client = createHubClient({ ...hubOptionsFromEnv(env), dispatcher, onRetry: settings.onRetry });
  return { client, close: () => dispatcher.close() };
}

/** A retry as one log line: `retrying GET .../resolve/... in 2.0s (429)`. */
export function describeRetry(event: RetryEvent): string {
  return `hub: retrying ${event.url} in ${(event.delayMs / 1000).toFixed(1)}s (${event.reason}, try ${event.attempt})`;
}
