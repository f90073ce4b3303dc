// A Hugging Face Hub on loopback for tests and benches: tree API (paginated), resolve (Range/ETag/HEAD),
// a 302 to a second "CDN" server for LFS files, private/gated repos, 429 bursts, refs, and non-xet uploads.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  buildRepo,
  type Repo,
  type RepoSpec,
  type StoredFile,
  splitRevision,
  TEST_TOKEN,
  treeEntries,
} from './hub-repos.js';
import { type CommitRecord, readBody, sendJson, uploadHandlers } from './hub-uploads.js';

export interface HubServerOptions {
  repos: RepoSpec[];
  /** The token that opens private and gated repos and allows uploads. */
  token?: string;
  /** Entries per tree API page (the real Hub uses 1000); small values force pagination. */
  pageSize?: number;
  /** After this many /api requests in a row, the next one gets a 429 (a burst limit); default off. */
  apiBurst?: number;
  /** Retry-After seconds sent with 429s; default 0. */
  retryAfterSeconds?: number;
}

export interface HubStats {
  /** `ORG/NAME/PATH` -> requests with a Range header that were served (by whichever host served bytes). */
  rangeRequests: Map<string, number>;
  /** `ORG/NAME/PATH` -> body bytes sent. */
  bytesServed: Map<string, number>;
  /** The Authorization header of every request, per host ('' when absent). */
  authorization: { hub: string[]; cdn: string[] };
  /** Every request: host, method, URL, Range header and the status answered. */
  requests: Array<{ host: 'hub' | 'cdn'; method: string; url: string; range?: string; status: number }>;
  /** Most file bodies being sent at the same time. */
  maxInFlight: number;
  commits: CommitRecord[];
}

export interface HubServer {
  url: string;
  cdnUrl: string;
  stats: HubStats;
  repos: Map<string, Repo>;
  /** The next `count` hub requests whose `METHOD URL` matches `pattern` answer `status` (with Retry-After 0). */
  failNext(count: number, status: number, pattern?: RegExp): void;
  /** The next `count` file bodies stop after `bytes` bytes: the connection is cut mid-transfer. */
  cutNext(count: number, bytes: number): void;
  /** The bytes of a file as the repo now holds it (e.g. after an upload). */
  fileBytes(repo: string, revision: string, filePath: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

type Reply = http.ServerResponse;
type Request = http.IncomingMessage;

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const token = options.token ?? TEST_TOKEN;
  const pageSize = options.pageSize ?? 1000;
  const repos = new Map(options.repos.map((spec) => [spec.id, buildRepo(spec)]));
  const failures: Array<{ count: number; status: number; pattern: RegExp }> = [];
  const cuts: Array<{ count: number; bytes: number }> = [];
  const stats: HubStats = {
    rangeRequests: new Map(),
    bytesServed: new Map(),
    authorization: { hub: [], cdn: [] },
    requests: [],
    maxInFlight: 0,
    commits: [],
  };
  const uploads = uploadHandlers({
    repos,
    commits: stats.commits,
    hubUrl: () => hubUrl,
    cdnUrl: () => cdnUrl,
  });
  const cdnFiles = new Map<string, { repo: string; file: StoredFile }>();
  const diskCache = new Map<string, Buffer>();
  let apiRun = 0;
  let inFlight = 0;

  const log = (host: 'hub' | 'cdn', request: Request, reply: Reply) => {
    stats.authorization[host].push(request.headers.authorization ?? '');
    reply.on('close', () => {
      const { method = '', url = '', headers } = request;
      stats.requests.push({ host, method, url, range: headers.range, status: reply.statusCode });
    });
  };

  const hub = http.createServer((request, reply) => {
    log('hub', request, reply);
    const url = new URL(request.url ?? '/', 'http://hub');
    const failure = failures.find((f) => f.count > 0 && f.pattern.test(`${request.method} ${request.url}`));
    if (failure) {
      failure.count -= 1;
      request.resume();
      return sendJson(reply, failure.status, { error: `injected ${failure.status}` }, { 'retry-after': '0' });
    }
    if (options.apiBurst !== undefined && url.pathname.startsWith('/api/') && ++apiRun > options.apiBurst) {
      apiRun = 0;
      request.resume();
      const retryAfter = String(options.retryAfterSeconds ?? 0);
      return sendJson(reply, 429, { error: 'Too many requests' }, { 'retry-after': retryAfter });
    }
    route(request, reply, url).catch((error: Error) => {
      if (!reply.headersSent) sendJson(reply, 500, { error: error.message });
      else reply.destroy(error);
    });
  });

  const cdn = http.createServer(async (request, reply) => {
    log('cdn', request, reply);
    const [, kind, key] = new URL(request.url ?? '/', 'http://cdn').pathname.split('/');
    if (kind === 'upload' && request.method === 'PUT') {
      return uploads.receiveUpload(reply, key, await readBody(request));
    }
    const found = kind === 'files' ? cdnFiles.get(key) : undefined;
    if (!found) return sendJson(reply, 404, { error: 'NoSuchKey' });
    serveBytes(request, reply, found.repo, found.file, { etag: `"${found.file.lfs}"` });
  });

  async function route(request: Request, reply: Reply, url: URL): Promise<void> {
    const parts = url.pathname.split('/').slice(1);
    const authorized = request.headers.authorization === `Bearer ${token}`;
    if (request.method === 'POST' && url.pathname === '/api/repos/create') {
      if (!authorized) return refuseWrite(request, reply);
      return uploads.createRepo(reply, await readBody(request));
    }
    const api = parts[0] === 'api';
    // Model repos have no type in file URLs (`/ORG/NAME/resolve/...`); their API paths say `models`.
    const typed = api ? parts.slice(1) : parts[0] === 'datasets' ? parts : ['models', ...parts];
    const [kind, org, rawName, action] = typed;
    const gitLfs = rawName?.endsWith('.git');
    const repo = repos.get(`${org}/${gitLfs ? rawName.slice(0, -4) : rawName}`);
    if (!repo || kind !== (repo.spec.type === 'model' ? 'models' : 'datasets')) {
      request.resume();
      return sendJson(reply, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    }
    const denied = accessProblem(repo, request.headers.authorization);
    if (denied) {
      request.resume();
      return sendJson(reply, denied.status, { error: denied.message }, { 'x-error-code': denied.code });
    }
    const rest = decodeURIComponent(typed.slice(4).join('/'));
    if (api && action === 'tree' && request.method === 'GET') return tree(reply, url, repo, rest);
    if (api && action === 'refs') return refs(reply, repo);
    if (!api && action === 'resolve') return resolve(request, reply, repo, rest);
    if (request.method !== 'POST') return sendJson(reply, 404, { error: 'Not found' });
    if (!authorized) return refuseWrite(request, reply);
    const body = await readBody(request);
    if (api && action === 'preupload') return uploads.preupload(reply, body);
    if (gitLfs && parts.slice(3).join('/') === 'info/lfs/objects/batch') return uploads.lfsBatch(reply, body);
    if (api && action === 'commit') return uploads.commit(reply, repo, rest, body);
    sendJson(reply, 404, { error: 'Not found' });
  }

  function tree(reply: Reply, url: URL, repo: Repo, revisionAndPath: string) {
    const split = splitRevision(repo, revisionAndPath);
    if (!split) return revisionNotFound(reply, revisionAndPath);
    const recursive = url.searchParams.get('recursive') === 'true';
    const entries = treeEntries(repo.revisions.get(split.revision) ?? [], split.path, recursive);
    if (!entries) return entryNotFound(reply, split.path);
    const cursor = Number(url.searchParams.get('cursor') ?? 0);
    const headers: Record<string, string> = {};
    if (cursor + pageSize < entries.length) {
      const next = new URL(url.pathname + url.search, hubUrl);
      next.searchParams.set('cursor', String(cursor + pageSize));
      headers.link = `<${next.href}>; rel="next"`;
    }
    sendJson(reply, 200, entries.slice(cursor, cursor + pageSize), headers);
  }

  function refs(reply: Reply, repo: Repo) {
    const names = [...repo.revisions.keys()];
    const ref = (name: string) => ({
      name: name.startsWith('refs/') ? name.split('/')[2] : name,
      ref: name.startsWith('refs/') ? name : `refs/heads/${name}`,
      targetCommit: repo.commits.get(name),
    });
    sendJson(reply, 200, {
      branches: names.filter((name) => !name.startsWith('refs/')).map(ref),
      converts: names.filter((name) => name.startsWith('refs/convert/')).map(ref),
      tags: [],
    });
  }

  function resolve(request: Request, reply: Reply, repo: Repo, revisionAndPath: string) {
    const split = splitRevision(repo, revisionAndPath);
    if (!split) return revisionNotFound(reply, revisionAndPath);
    const file = repo.revisions.get(split.revision)?.find((entry) => entry.path === split.path);
    if (!file) return entryNotFound(reply, split.path);
    const commit = { 'x-repo-commit': repo.commits.get(split.revision) ?? '' };
    if (!file.lfs)
      return serveBytes(request, reply, repo.spec.id, file, { etag: `"${file.oid}"`, ...commit });
    const key = `${file.lfs}-${createHash('sha1').update(`${repo.spec.id}/${file.path}`).digest('hex').slice(0, 8)}`;
    cdnFiles.set(key, { repo: repo.spec.id, file });
    reply.writeHead(302, {
      location: `${cdnUrl}/files/${key}?X-Amz-Signature=loopback`,
      'x-linked-size': String(file.size),
      'x-linked-etag': `"${file.lfs}"`,
      etag: `"${file.oid}"`,
      ...commit,
    });
    reply.end();
  }

  function accessProblem(repo: Repo, authorization: string | undefined) {
    const restricted = `Access to dataset ${repo.spec.id} is restricted`;
    if (authorization === `Bearer ${token}`) return undefined;
    if (repo.spec.private) return { status: 401, code: 'RepoNotFound', message: 'Repository not found' };
    if (repo.spec.gated && !authorization) {
      return {
        status: 401,
        code: 'GatedRepo',
        message: `${restricted}. You must be authenticated to access it.`,
      };
    }
    if (repo.spec.gated) {
      return {
        status: 403,
        code: 'GatedRepo',
        message: `${restricted} and you are not in the authorized list.`,
      };
    }
    return undefined;
  }

  function serveBytes(
    request: Request,
    reply: Reply,
    repoId: string,
    file: StoredFile,
    headers: Record<string, string>,
  ) {
    const key = `${repoId}/${file.path}`;
    const range = parseRange(request.headers.range, file.size);
    if (range === 'unsatisfiable')
      return void reply.writeHead(416, { 'content-range': `bytes */${file.size}` }).end();
    const [start, end] = range ?? [0, file.size - 1];
    const length = Math.max(0, end - start + 1);
    const base = { ...headers, 'accept-ranges': 'bytes', 'content-length': String(length) };
    if (range) {
      stats.rangeRequests.set(key, (stats.rangeRequests.get(key) ?? 0) + 1);
      reply.writeHead(206, { ...base, 'content-range': `bytes ${start}-${end}/${file.size}` });
    } else reply.writeHead(200, base);
    if (request.method === 'HEAD' || length === 0) return void reply.end();
    const cut = cuts.find((pending) => pending.count > 0);
    if (cut) cut.count -= 1;
    const last = cut ? Math.min(end, start + cut.bytes - 1) : end;
    stats.bytesServed.set(key, (stats.bytesServed.get(key) ?? 0) + (last - start + 1));
    stats.maxInFlight = Math.max(stats.maxInFlight, ++inFlight);
    reply.on('close', () => {
      inFlight -= 1;
    });
    const bytes = contentOf(file).subarray(start, last + 1);
    if (cut) reply.write(bytes, () => reply.destroy());
    else reply.end(bytes);
  }

  /** A file's bytes; shared files are read from their place once and then served from memory, like a CDN cache. */
  function contentOf(file: StoredFile): Buffer {
    if ('bytes' in file.source) return file.source.bytes;
    const cached = diskCache.get(file.source.disk) ?? readFileSync(file.source.disk);
    diskCache.set(file.source.disk, cached);
    return cached;
  }

  function refuseWrite(request: Request, reply: Reply) {
    request.resume();
    sendJson(reply, 401, { error: 'Invalid credentials in Authorization header' });
  }

  const hubUrl = await listen(hub);
  const cdnUrl = await listen(cdn);
  return {
    url: hubUrl,
    cdnUrl,
    stats,
    repos,
    failNext(count, status, pattern = /./) {
      failures.push({ count, status, pattern });
    },
    cutNext(count, bytes) {
      cuts.push({ count, bytes });
    },
    async fileBytes(repoId, revision, filePath) {
      const file = repos
        .get(repoId)
        ?.revisions.get(revision)
        ?.find((entry) => entry.path === filePath);
      return file && contentOf(file);
    },
    close: () => Promise.all([closeServer(hub), closeServer(cdn)]).then(() => undefined),
  };
}

function revisionNotFound(reply: Reply, revisionAndPath: string) {
  const revision = revisionAndPath.split('/')[0];
  sendJson(reply, 404, { error: `Invalid rev id: ${revision}` }, { 'x-error-code': 'RevisionNotFound' });
}

function entryNotFound(reply: Reply, path: string) {
  sendJson(reply, 404, { error: `Entry not found: ${path}` }, { 'x-error-code': 'EntryNotFound' });
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` -> [start, end] inclusive; undefined without a Range header. */
function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | 'unsatisfiable' | undefined {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header) : null;
  if (!match) return undefined;
  const [, from, to] = match;
  const start = from === '' ? Math.max(0, size - Number(to)) : Number(from);
  const end = from === '' || to === '' ? size - 1 : Math.min(Number(to), size - 1);
  return start > end || start >= size ? 'unsatisfiable' : [start, end];
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
