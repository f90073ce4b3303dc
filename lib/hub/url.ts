// Parses and formats `hf://datasets/ORG/NAME[@REVISION][/PATH-OR-GLOB]` inputs and outputs.
// A revision may itself contain slashes (`refs/convert/parquet`, `refs/pr/3`) or be URL-encoded (`refs%2Fpr%2F3`).
import { MegadocsError } from '../errors.js';

/** Where an `hf://` URL points: a dataset repository, a revision, and a path or glob inside it. */
export interface HubLocation {
  /** `ORG/NAME`. */
  repo: string;
  /** Branch, tag, commit or `refs/...`; `main` when the URL names none. */
  revision: string;
  /** Path or glob inside the repository; `''` means the whole repository. */
  path: string;
}

const PREFIX = 'hf://';
/** Revisions whose names contain slashes: `refs/convert/parquet`, `refs/pr/12`. */
const SLASHED_REVISION = /^refs\/(convert|pr)\/[^/]+/;

export function isHubUrl(input: string): boolean {
  return input.startsWith(PREFIX);
}

/** `hf://datasets/ORG/NAME@REV/PATH` -> {repo, revision, path}; errors say what the shape must be. */
export function parseHubUrl(input: string): HubLocation {
  const fail = (problem: string): never => {
    throw new MegadocsError('BAD_INPUT', problem, {
      where: input,
      hint: 'Write hf://datasets/ORG/NAME[@REVISION][/PATH-OR-GLOB], e.g. hf://datasets/HuggingFaceFW/fineweb/data/CC-MAIN-2013-20/*.parquet',
    });
  };
  if (!isHubUrl(input)) fail('not an hf:// URL');
  const rest = input.slice(PREFIX.length);
  const [kind, org, nameAndRevision, ...tail] = rest.split('/');
  if (kind !== 'datasets') {
    fail(
      kind === 'models' || kind === 'spaces'
        ? `only dataset repositories can be read, not ${kind}`
        : 'the URL must start with hf://datasets/',
    );
  }
  if (!org || !nameAndRevision) fail('the repository must be named as ORG/NAME');
  const at = nameAndRevision.indexOf('@');
  const name = at === -1 ? nameAndRevision : nameAndRevision.slice(0, at);
  if (!name) fail('the repository must be named as ORG/NAME');
  if (at === -1) return { repo: `${org}/${name}`, revision: 'main', path: tail.join('/') };

  const afterAt = [nameAndRevision.slice(at + 1), ...tail].join('/');
  const slashed = SLASHED_REVISION.exec(afterAt);
  const rawRevision = slashed ? slashed[0] : afterAt.split('/')[0];
  const path = afterAt.slice(rawRevision.length).replace(/^\//, '');
  let revision = rawRevision;
  try {
    revision = decodeURIComponent(rawRevision);
  } catch {
    fail(`the revision "${rawRevision}" is not valid URL encoding`);
  }
  if (!revision) fail('the revision after @ is empty');
  return { repo: `${org}/${name}`, revision, path };
}

/** The `hf://` URL of a file (or of the location itself), as shown in errors and progress. */
export function formatHubUrl(location: Pick<HubLocation, 'repo' | 'revision'>, path = ''): string {
  const { revision: name } = location;
  const readable = SLASHED_REVISION.test(name) || !name.includes('/') ? name : encodeURIComponent(name);
  const revision = name === 'main' ? '' : `@${readable}`;
  return `${PREFIX}datasets/${location.repo}${revision}${path ? `/${path}` : ''}`;
}
