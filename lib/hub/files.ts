// Which files an `hf://` input names: a file, a folder, a glob (listed with pagination by @huggingface/hub),
// or a `--config/--split` pair resolved from the dataset card's `configs:` YAML or `refs/convert/parquet`.
import { HubApiError, type ListFileEntry, listFiles } from '@huggingface/hub';
import picomatch from 'picomatch';
import { parse as parseYaml } from 'yaml';
import { MegadocsError } from '../errors.js';
import type { HubClient } from './client.js';
import { type HubErrorContext, hubCallError, hubResponseError } from './errors.js';
import { formatHubUrl, type HubLocation } from './url.js';

/** One file of a Hub dataset, as listed (size and hashes known before it is opened). */
export interface HubFile {
  repo: string;
  revision: string;
  path: string;
  size: number;
  /** LFS files: the sha256 of the content. */
  sha256?: string;
  /** Other files: the git blob id (sha1 of `blob SIZE\0` + content). */
  gitOid?: string;
}

/** Picks a dataset config's split instead of a path (`--config NAME --split NAME`). */
export interface HubSelection {
  config?: string;
  split?: string;
}

export const CONVERTED_PARQUET = 'refs/convert/parquet';
const SHOWN = 12;

/** The files an `hf://` location names, sorted by path; an input that names none is an error saying what exists. */
export async function resolveHubFiles(
  location: HubLocation,
  client: HubClient,
  selection: HubSelection = {},
): Promise<HubFile[]> {
  if (selection.config !== undefined || selection.split !== undefined) {
    if (location.path) {
      throw new MegadocsError(
        'BAD_OPTION',
        '--config/--split select files themselves: the URL must not name a path',
        {
          where: formatHubUrl(location, location.path),
          hint: `Use hf://datasets/${location.repo} with --config/--split, or a path/glob without them`,
        },
      );
    }
    return filesOfSplit(location, client, selection.config, selection.split ?? 'train');
  }
  return filesMatching(location, client, location.path);
}

/** Files matching a path, a folder or a glob (relative to the repo root) at the location's revision. */
async function filesMatching(location: HubLocation, client: HubClient, pattern: string): Promise<HubFile[]> {
  const scan = picomatch.scan(pattern);
  if (!scan.isGlob && pattern) {
    const parent = pattern.includes('/') ? pattern.slice(0, pattern.lastIndexOf('/')) : '';
    const siblings = await requireTree(location, client, parent, false, pattern);
    const entry = siblings.find((item) => item.path === pattern);
    if (!entry) throw missingPath(location, pattern, parent, siblings);
    if (entry.type === 'file') return [toHubFile(location, entry)];
  }
  const base = scan.isGlob ? scan.base : pattern;
  const glob = scan.isGlob ? pattern : pattern ? `${pattern}/**` : '**';
  const isMatch = picomatch(glob);
  const entries = await requireTree(location, client, base, true, pattern);
  const files = entries.filter((entry) => entry.type === 'file' && isMatch(entry.path));
  if (files.length === 0) {
    const present = entries.filter((entry) => entry.type === 'file').map((entry) => entry.path);
    throw new MegadocsError('BAD_INPUT', `no file matches "${pattern}" at revision ${location.revision}`, {
      where: formatHubUrl(location, pattern),
      hint: present.length
        ? `Files under "${base || '/'}": ${listSome(present)}`
        : `"${base || '/'}" holds no file`,
    });
  }
  return files.map((entry) => toHubFile(location, entry));
}

/** A config's split: from the card's `configs:` when it has them, else from the refs/convert/parquet branch. */
async function filesOfSplit(
  location: HubLocation,
  client: HubClient,
  config: string | undefined,
  split: string,
): Promise<HubFile[]> {
  const configs = parseCardConfigs(await readCard(location, client));
  if (!configs) return convertedSplit(location, client, config ?? 'default', split);
  const where = formatHubUrl(location);
  const chosen = config ?? (configs.find((item) => item.isDefault) ?? configs[0])?.name;
  const found = configs.find((item) => item.name === chosen);
  if (!found) {
    throw new MegadocsError('BAD_OPTION', `the dataset card has no config "${chosen}"`, {
      where,
      hint: `Configs: ${configs.map((item) => item.name).join(', ')}`,
    });
  }
  const patterns = found.splits.get(split);
  if (!patterns) {
    throw new MegadocsError('BAD_OPTION', `config "${found.name}" has no split "${split}"`, {
      where,
      hint: `Splits of "${found.name}": ${[...found.splits.keys()].join(', ')}`,
    });
  }
  const byPath = new Map<string, HubFile>();
  for (const pattern of patterns) {
    for (const file of await filesMatching(location, client, pattern)) byPath.set(file.path, file);
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** `CONFIG/SPLIT/*.parquet` (or `CONFIG/partial-SPLIT/`) on the branch the Hub's Parquet conversion writes. */
async function convertedSplit(
  location: HubLocation,
  client: HubClient,
  config: string,
  split: string,
): Promise<HubFile[]> {
  const converted = { ...location, revision: CONVERTED_PARQUET };
  for (const folder of [`${config}/${split}`, `${config}/partial-${split}`]) {
    const entries = await listTree(converted, client, folder, true);
    const files = entries?.filter((entry) => entry.type === 'file' && entry.path.endsWith('.parquet'));
    if (files?.length) return files.map((entry) => toHubFile(converted, entry));
  }
  const where = formatHubUrl(converted);
  const configs = await listTree(converted, client, '', false);
  if (!configs) {
    throw new MegadocsError(
      'BAD_INPUT',
      `the dataset card has no "configs:" and there is no ${CONVERTED_PARQUET} branch`,
      {
        where: formatHubUrl(location),
        hint: 'Name the files with a path or glob instead of --config/--split',
      },
    );
  }
  const names = configs.filter((entry) => entry.type === 'directory').map((entry) => entry.path);
  if (!names.includes(config)) {
    throw new MegadocsError('BAD_OPTION', `there is no converted config "${config}"`, {
      where,
      hint: `Configs: ${names.join(', ') || 'none'}`,
    });
  }
  const splits = ((await listTree(converted, client, config, false)) ?? [])
    .filter((entry) => entry.type === 'directory')
    .map((entry) => entry.path.slice(config.length + 1).replace(/^partial-/, ''));
  throw new MegadocsError('BAD_OPTION', `config "${config}" has no split "${split}"`, {
    where,
    hint: `Splits of "${config}": ${splits.join(', ') || 'none'}`,
  });
}

interface CardConfig {
  name: string;
  isDefault: boolean;
  /** split -> glob patterns relative to the repo root. */
  splits: Map<string, string[]>;
}

/** The `configs:` of a dataset card's YAML header, or undefined when it has none. */
export function parseCardConfigs(card: string | undefined): CardConfig[] | undefined {
  const header = card && /^---\s*\n([\s\S]*?)\n---\s*(\n|$)/.exec(card);
  if (!header) return undefined;
  const yaml = parseYaml(header[1]) as { configs?: unknown } | null;
  if (!Array.isArray(yaml?.configs) || yaml.configs.length === 0) return undefined;
  return yaml.configs.map((raw: Record<string, unknown>) => {
    const dataDir = typeof raw.data_dir === 'string' ? `${raw.data_dir.replace(/\/+$/, '')}/` : '';
    const splits = new Map<string, string[]>();
    const add = (split: string, paths: unknown) => {
      const list = (Array.isArray(paths) ? paths : [paths]).filter((item) => typeof item === 'string');
      splits.set(split, [...(splits.get(split) ?? []), ...list.map((item) => dataDir + item)]);
    };
    const files = raw.data_files ?? (dataDir ? '**' : undefined);
    if (
      typeof files === 'string' ||
      (Array.isArray(files) && files.every((item) => typeof item === 'string'))
    ) {
      add('train', files);
    } else if (Array.isArray(files)) {
      for (const item of files as Array<{ split?: string; path?: unknown }>)
        add(item.split ?? 'train', item.path);
    } else if (files && typeof files === 'object') {
      for (const [split, paths] of Object.entries(files)) add(split, paths);
    }
    return { name: String(raw.config_name ?? 'default'), isDefault: raw.default === true, splits };
  });
}

async function readCard(location: HubLocation, client: HubClient): Promise<string | undefined> {
  const url = `${client.endpoint}/datasets/${location.repo}/resolve/${encodeURIComponent(location.revision)}/README.md`;
  const context = errorContext(location, client, 'README.md');
  const response = await client.request(url).catch((error: unknown) => {
    throw hubCallError(error, context);
  });
  if (response.status === 404 && response.headers['x-error-code'] === 'EntryNotFound') {
    await response.body.dump();
    return undefined;
  }
  if (response.status !== 200) throw await hubResponseError(response, context);
  return response.body.text();
}

/** A folder's entries, or undefined when the Hub answers 404 (no such folder, revision or repo). */
async function listTree(
  location: HubLocation,
  client: HubClient,
  folder: string,
  recursive: boolean,
  asked = folder,
): Promise<ListFileEntry[] | undefined> {
  const entries: ListFileEntry[] = [];
  try {
    for await (const entry of listFiles({
      repo: { type: 'dataset', name: location.repo },
      revision: encodeURIComponent(location.revision),
      path: folder.split('/').map(encodeURIComponent).join('/'),
      recursive,
      hubUrl: client.endpoint,
      fetch: client.fetch,
    })) {
      entries.push(entry);
    }
  } catch (error) {
    if (error instanceof HubApiError && error.statusCode === 404) return undefined;
    throw hubCallError(error, errorContext(location, client, asked));
  }
  return entries;
}

/** Like listTree, but a 404 becomes an error that names what exists (revisions, or the nearest folder's entries). */
async function requireTree(
  location: HubLocation,
  client: HubClient,
  folder: string,
  recursive: boolean,
  asked: string,
): Promise<ListFileEntry[]> {
  const entries = await listTree(location, client, folder, recursive, asked);
  if (entries) return entries;
  await requireRevision(location, client, asked);
  let ancestor = folder;
  while (ancestor) {
    ancestor = ancestor.includes('/') ? ancestor.slice(0, ancestor.lastIndexOf('/')) : '';
    const listed = await listTree(location, client, ancestor, false, asked);
    if (listed) throw missingPath(location, asked, ancestor, listed);
  }
  throw missingPath(location, asked, '', []);
}

/** Throws when the revision does not exist, naming the branches, tags and converted refs that do. */
async function requireRevision(location: HubLocation, client: HubClient, asked: string): Promise<void> {
  const context = errorContext(location, client, asked);
  const refsUrl = `${client.endpoint}/api/datasets/${location.repo}/refs`;
  const response = await client.request(refsUrl).catch((error: unknown) => {
    throw hubCallError(error, context);
  });
  if (response.status !== 200) throw await hubResponseError(response, context);
  const refs = (await response.body.json()) as Record<
    string,
    Array<{ name: string; ref: string; targetCommit?: string }>
  >;
  const all = Object.values(refs).flat();
  const known = all.flatMap((ref) => [ref.name, ref.ref, ref.targetCommit]);
  if (known.includes(location.revision)) return;
  const names = (kind: string) => (refs[kind] ?? []).map((ref) => (kind === 'converts' ? ref.ref : ref.name));
  throw new MegadocsError(
    'BAD_INPUT',
    `the dataset ${location.repo} has no revision "${location.revision}"`,
    {
      where: context.where,
      hint: `Branches: ${names('branches').join(', ') || 'none'}; tags: ${names('tags').join(', ') || 'none'}; converted: ${names('converts').join(', ') || 'none'}`,
    },
  );
}

function missingPath(
  location: HubLocation,
  asked: string,
  folder: string,
  entries: ListFileEntry[],
): MegadocsError {
  const shown = entries.map((entry) => (entry.type === 'directory' ? `${entry.path}/` : entry.path));
  return new MegadocsError('BAD_INPUT', `"${asked}" does not exist at revision ${location.revision}`, {
    where: formatHubUrl(location, asked),
    hint: shown.length ? `"${folder || '/'}" holds: ${listSome(shown)}` : 'The revision holds no files',
  });
}

function toHubFile(location: HubLocation, entry: ListFileEntry): HubFile {
  const file: HubFile = {
    repo: location.repo,
    revision: location.revision,
    path: entry.path,
    size: entry.size,
  };
  if (entry.lfs) file.sha256 = entry.lfs.oid;
  else if (entry.oid) file.gitOid = entry.oid;
  return file;
}

export function errorContext(location: HubLocation, client: HubClient, path = ''): HubErrorContext {
  return {
    where: formatHubUrl(location, path),
    endpoint: client.endpoint,
    repo: location.repo,
    hasToken: client.hasToken,
  };
}

function listSome(items: string[]): string {
  const shown = items.slice(0, SHOWN).join(', ');
  return items.length > SHOWN ? `${shown} and ${items.length - SHOWN} more` : shown;
}
