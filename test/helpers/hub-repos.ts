// The repositories the loopback Hub serves: files (shared data on disk, or uploaded bytes) per revision,
// with the sizes, git oids and LFS sha256s the real Hub reports, and tree listings built from them.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's shared data folder (`../shared/data` from the repo root). */
export const SHARED_DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/data');
export const TEST_TOKEN = 'hf_megadocs_test_token';

/** A file's content: a path on disk (served from there, never copied) or bytes (uploads, cards). */
export type FileSource = { disk: string } | { bytes: Buffer };

export interface RepoSpec {
  /** `ORG/NAME`. */
  id: string;
  /** A model repo answers at `/ORG/NAME/...` and `/api/models/...`; the default is a dataset repo. */
  type?: 'model';
  /** Needs the token for everything (answers 401 like the real Hub otherwise). */
  private?: boolean;
  /** Answers 401 GatedRepo without a token and 403 GatedRepo with a token that has not accepted. */
  gated?: boolean;
  /** revision name -> path in the repo -> content. */
  revisions: Record<string, Record<string, FileSource>>;
}

export interface StoredFile {
  path: string;
  size: number;
  /** Git blob oid (of the LFS pointer for LFS files). */
  oid: string;
  /** sha256 of the content, for LFS files. */
  lfs?: string;
  source: FileSource;
}

export interface Repo {
  spec: RepoSpec;
  /** revision -> files sorted by path; each revision also answers to its commit id. */
  revisions: Map<string, StoredFile[]>;
  commits: Map<string, string>;
}

const TEXT_FILES = /\.(md|json|txt|yaml|yml|gitattributes)$/;
const LFS_ABOVE = 10 * 1024 * 1024;
const hashCache = new Map<string, { sha256: string; gitOid: string; size: number }>();

export function buildRepo(spec: RepoSpec): Repo {
  const revisions = new Map<string, StoredFile[]>();
  const commits = new Map<string, string>();
  for (const [revision, files] of Object.entries(spec.revisions)) {
    revisions.set(revision, storeFiles(files));
    commits.set(revision, sha1(`${spec.id}@${revision}:${Object.keys(files).join(',')}`));
  }
  return { spec, revisions, commits };
}

export function storeFiles(files: Record<string, FileSource>): StoredFile[] {
  return Object.entries(files)
    .map(([filePath, source]) => storeFile(filePath, source))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

export function storeFile(filePath: string, source: FileSource): StoredFile {
  const { sha256, gitOid, size } = hashesOf(source);
  if (!isLfs(filePath, size)) return { path: filePath, size, oid: gitOid, source };
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
  return { path: filePath, size, oid: gitBlobOid(Buffer.from(pointer)), lfs: sha256, source };
}

/** Like the real Hub's default .gitattributes: binary formats and anything over 10 MB go to LFS. */
export function isLfs(filePath: string, size: number): boolean {
  return !TEXT_FILES.test(filePath) || size > LFS_ABOVE;
}

/** Finds which known revision (or commit id) a decoded `REV[/PATH]` string starts with. */
export function splitRevision(
  repo: Repo,
  revisionAndPath: string,
): { revision: string; path: string } | undefined {
  const names = [...repo.revisions.keys(), ...repo.commits.values()].sort((a, b) => b.length - a.length);
  for (const name of names) {
    if (revisionAndPath === name || revisionAndPath.startsWith(`${name}/`)) {
      const revision = [...repo.commits].find(([, commit]) => commit === name)?.[0] ?? name;
      return { revision, path: revisionAndPath.slice(name.length + 1) };
    }
  }
  return undefined;
}

export interface TreeEntry {
  type: 'file' | 'directory';
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

/** The tree API's entries under `dir` (directories and files), or undefined when `dir` is not a folder. */
export function treeEntries(files: StoredFile[], dir: string, recursive: boolean): TreeEntry[] | undefined {
  const prefix = dir ? `${dir}/` : '';
  const below = files.filter((file) => file.path.startsWith(prefix));
  if (dir && below.length === 0) return undefined;
  const entries = new Map<string, TreeEntry>();
  for (const file of below) {
    const parts = file.path.slice(prefix.length).split('/');
    const depth = recursive ? parts.length - 1 : Math.min(1, parts.length - 1);
    for (let level = 1; level <= depth; level += 1) {
      const folder = prefix + parts.slice(0, level).join('/');
      entries.set(folder, { type: 'directory', oid: sha1(folder), size: 0, path: folder });
    }
    if (recursive || parts.length === 1) entries.set(file.path, fileEntry(file));
  }
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

function fileEntry(file: StoredFile): TreeEntry {
  const entry: TreeEntry = { type: 'file', oid: file.oid, size: file.size, path: file.path };
  if (file.lfs) entry.lfs = { oid: file.lfs, size: file.size, pointerSize: 130 };
  return entry;
}

function hashesOf(source: FileSource): { sha256: string; gitOid: string; size: number } {
  const key = 'disk' in source ? source.disk : undefined;
  const cached = key ? hashCache.get(key) : undefined;
  if (cached) return cached;
  const bytes = 'disk' in source ? readFileSync(source.disk) : source.bytes;
  const hashes = {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    gitOid: gitBlobOid(bytes),
    size: 'disk' in source ? statSync(source.disk).size : bytes.length,
  };
  if (key) hashCache.set(key, hashes);
  return hashes;
}

function gitBlobOid(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

const FINEWEB_CARD = `---
license: odc-by
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*/*
- config_name: CC-MAIN-2013-20
  data_files:
  - split: train
    path: data/CC-MAIN-2013-20/*
---
# FineWeb (a loopback miniature)
`;

/**
 * The shared data laid out like the real datasets: FineWeb (Parquet, with a card that has `configs:`),
 * DCLM (`.jsonl.zst`), a dataset with only a `refs/convert/parquet` branch, a private and a gated copy.
 * `copies` > 1 serves each shard under that many names (distinct paths, same bytes) for rank tests and benches.
 */
export function sharedDataRepos(dataDir = SHARED_DATA, copies = 1): RepoSpec[] {
  const disk = (name: string): FileSource => ({ disk: path.join(dataDir, name) });
  const numbered = (count: number, name: (index: number) => string, file: string) =>
    Object.fromEntries(Array.from({ length: count }, (_, index) => [name(index), disk(file)]));
  const pad = (value: number, width: number) => String(value).padStart(width, '0');
  return [
    {
      id: 'HuggingFaceFW/fineweb',
      revisions: {
        main: {
          'README.md': { bytes: Buffer.from(FINEWEB_CARD) },
          ...numbered(copies, (i) => `data/CC-MAIN-2013-20/000_${pad(i, 5)}.parquet`, 'fineweb-300.parquet'),
        },
      },
    },
    {
      id: 'mlfoundations/dclm-baseline-1.0',
      revisions: {
        main: {
          'README.md': {
            bytes: Buffer.from('---\nlicense: cc-by-4.0\n---\n# DCLM (a loopback miniature)\n'),
          },
          ...numbered(
            copies,
            (i) => `global-shard_01_of_10/local-shard_0_of_10/shard_${pad(i, 8)}_processed.jsonl.zst`,
            'wikipedia-2349.jsonl.zst',
          ),
        },
      },
    },
    {
      id: 'fka/awesome-chatgpt-prompts',
      revisions: {
        main: { 'README.md': { bytes: Buffer.from('---\nlicense: cc0-1.0\n---\n# Prompts\n') } },
        'refs/convert/parquet': {
          'default/train/0000.parquet': disk('hub-convert-parquet/default/train/0000.parquet'),
        },
      },
    },
    {
      id: 'megadocs/private-fineweb',
      private: true,
      revisions: { main: { 'data/train-00000.parquet': disk('fineweb-300.parquet') } },
    },
    {
      id: 'megadocs/gated-wikipedia',
      gated: true,
      revisions: { main: { 'wikipedia.jsonl.zst': disk('wikipedia-2349.jsonl.zst') } },
    },
  ];
}
