// A Hub file as a ShardRef: a streamed GET for JSONL/compressed files, ranged GETs for Parquet (footer first,
// then only the row groups and columns read), so the same format readers read Hub and local files alike.
import type { Readable } from 'node:stream';
import type { AsyncBuffer } from 'hyparquet';
import { MegadocsError } from '../errors.js';
import { formatOf, SUPPORTED_EXTENSIONS } from '../sources/formats/detect.js';
import type { ShardRef } from '../sources/types.js';
import { type HubClient, type HubResponse, rangeHeaders, rangeStart } from './client.js';
import { hubCallError, hubResponseError } from './errors.js';
import { errorContext, type HubFile, type HubSelection, resolveHubFiles } from './files.js';
import { parquetReadahead } from './readahead.js';
import { formatHubUrl, parseHubUrl } from './url.js';

export interface HubInputOptions {
  client: HubClient;
  /** `--config/--split`, when given. */
  selection?: HubSelection;
  /** Told about each listed file whose format cannot be read (it is left out). */
  onSkipped?: (name: string) => void;
}

/** The readable shards of one `hf://` input (what expandInputs calls for Hub inputs). */
export async function expandHubInput(input: string, options: HubInputOptions): Promise<ShardRef[]> {
  const files = await resolveHubFiles(parseHubUrl(input), options.client, options.selection);
  const readable = files.filter((file) => formatOf(file.path) !== undefined);
  for (const file of files) if (formatOf(file.path) === undefined) options.onSkipped?.(hubFileName(file));
  if (readable.length === 0) {
    throw new MegadocsError('BAD_INPUT', `no input files: it holds only unsupported files`, {
      where: input,
      hint: `Supported extensions: ${SUPPORTED_EXTENSIONS}`,
    });
  }
  return readable.map((file) => hubShard(file, options.client));
}

/** A ShardRef for a listed Hub file; nothing is fetched until a reader opens it. */
export function hubShard(file: HubFile, client: HubClient): ShardRef {
  const name = hubFileName(file);
  return {
    name,
    size: file.size,
    async openStream(): Promise<Readable> {
      return (await fetchHubFile(client, file)).body;
    },
    async openBuffer(): Promise<AsyncBuffer> {
      let direct: string | undefined;
      return parquetReadahead(file.size, async (start, end) => {
        const response = await fetchHubFile(client, file, start, end, { direct });
        direct = response.url;
        const bytes = await response.body.arrayBuffer();
        if (bytes.byteLength !== end - start) {
          throw new MegadocsError(
            'CORRUPT',
            `bytes ${start}-${end} came back with ${bytes.byteLength} bytes`,
            {
              where: name,
              hint: 'The file may have changed on the Hub; pin a revision (@COMMIT) and run again',
            },
          );
        }
        return bytes;
      });
    },
  };
}

/** `hf://datasets/ORG/NAME[@REV]/PATH`. */
export function hubFileName(file: HubFile): string {
  return formatHubUrl(file, file.path);
}

/** The resolve URL of a file (the Hub answers it directly or with a redirect to its CDN). */
export function hubFileUrl(client: HubClient, file: HubFile): string {
  const path = file.path.split('/').map(encodeURIComponent).join('/');
  return `${client.endpoint}/datasets/${file.repo}/resolve/${encodeURIComponent(file.revision)}/${path}`;
}

export interface FetchFileOptions {
  /** Any 200 or 206 answer as it is: a download (download.ts) checks where a 206 starts, and restarts on a 200. */
  asIs?: boolean;
  /** Where an earlier request was redirected (a CDN URL): asked first, the resolve URL again if it refuses. */
  direct?: string;
  signal?: AbortSignal;
}

/**
 * GETs a file, or bytes [start, end) of it; `response.url` is where the bytes came from. A ranged request
 * answered with anything but 206 from `start` is an error, unless `asIs` leaves that to the caller.
 */
export async function fetchHubFile(
  client: HubClient,
  file: HubFile,
  start = 0,
  end?: number,
  options: FetchFileOptions = {},
): Promise<HubResponse> {
  const headers = rangeHeaders(start, end);
  const context = errorContext(file, client, file.path);
  const get = (url: string) =>
    client.request(url, { headers, signal: options.signal }).catch((error: unknown) => {
      throw hubCallError(error, context);
    });
  let response = options.direct ? await get(options.direct) : undefined;
  if (!response || response.status >= 400) {
    await response?.body.dump();
    response = await get(hubFileUrl(client, file));
  }
  if (response.status >= 300) throw await hubResponseError(response, context);
  if (!headers.range || options.asIs) return response;
  if (response.status !== 206 || rangeStart(response) !== start) {
    await response.body.dump();
    throw new MegadocsError('HUB', `the server did not honour a range request (status ${response.status})`, {
      where: context.where,
      hint: 'HF_ENDPOINT must point at a Hub (or mirror) that supports HTTP Range requests',
    });
  }
  return response;
}
