// A Hugging Face Hub on loopback for tests and benches: tree API (paginated), resolve (Range/ETag/HEAD),
// a 302 to a second "CDN" server for LFS files, private/gated repos, 429 bursts, refs, and non-xet uploads.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  buildRepo,
  isLfs,
  type Repo,
  type RepoSpec,
  type StoredFile,
  splitRevision,
  storeFile,
  TEST_TOKEN,
  treeEntries,
} from './hub-repos.js';

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
  /** Every request: host, method, URL and the status answered. */
  requests: Array<{ host: 'hub' | 'cdn'; method: string; url: string; status: number }>;
  commits: Array<{ repo: string; branch: string; title: string; paths: string[] }>;
}

export interface HubServer {
  url: string;
  cdnUrl: string;
  stats: HubStats;
  repos: Map<string, Repo>;
  /** The next `count` hub requests whose `METHOD URL` matches `pattern` answer `status` (with Retry-After 0). */
  failNext(count: number, status: number, pattern?: RegExp): void;
  /** The bytes of a file as the repo now holds it (e.g. after an upload). */
  fileBytes(repo: string, revision: string, filePath: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

type Reply = http.ServerResponse;

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const token = options.token ?? TEST_TOKEN;
  const pageSize = options.pageSize ?? 1000;
  const repos = new Map(options.repos.map((spec) => [spec.id, buildRepo(spec)]));
  const uploads = new Map<string, Buffer>();
  const failures: Array<{ count: number; status: number; pattern: RegExp }> = [];
  const stats: HubStats = {
    rangeRequests: new Map(),
    bytesServed: new Map(),
    authorization: { hub: [], cdn: [] },
    requests: [],
    commits: [],
  };
  let apiRun = 0;

  const log = (host: 'hub' | 'cdn', request: http.IncomingMessage, reply: Reply) => {
    stats.authorization[host].push(request.headers.authorization ?? '');
    reply.on('finish', () => {
      stats.requests.push({
        host,
        method: request.method ?? '',
        url: request.url ?? '',
        status: reply.statusCode,
      });
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
    if (options.apiBurst !== undefined && url.pathname.startsWith('/api/')) {
      apiRun += 1;
      if (apiRun > options.apiBurst) {
        apiRun = 0;
        request.resume();
        const retryAfter = String(options.retryAfterSeconds ?? 0);
        return sendJson(reply, 429, { error: 'Too many requests' }, { 'retry-after': retryAfter });
      }
    }
    route(request, reply, url).catch((error: Error) => {
      if (!reply.headersSent) sendJson(reply, 500, { error: error.message });
      else reply.destroy(error);
    });
  });

  const cdn = http.createServer((request, reply) => {
    log('cdn', request, reply);
    const url = new URL(request.url ?? '/', 'http://cdn');
    const [, kind, key] = url.pathname.split('/');
    if (kind === 'upload' && request.method === 'PUT') return void receiveUpload(request, reply, key);
    const found = kind === 'files' ? cdnFiles.get(key) : undefined;
    if (!found) return sendJson(reply, 404, { error: 'NoSuchKey' });
    serveBytes(request, reply, found.repo, found.file, { etag: `"${found.file.lfs}"` });
  });
  const cdnFiles = new Map<string, { repo: string; file: StoredFile }>();

  async function route(request: http.IncomingMessage, reply: Reply, url: URL): Promise<void> {
    const parts = url.pathname.split('/').slice(1);
    if (request.method === 'POST' && url.pathname === '/api/repos/create') return createRepo(request, reply);
    const api = parts[0] === 'api';
    const [kind, org, rawName, action] = api ? parts.slice(1) : parts;
    const gitLfs = rawName?.endsWith('.git');
    const name = gitLfs ? rawName.slice(0, -4) : rawName;
    const repo = repos.get(`${org}/${name}`);
    if (kind !== 'datasets' || !repo) {
      request.resume();
      return sendJson(reply, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    }
    const denied = accessProblem(repo, request.headers.authorization);
    if (denied) {
      request.resume();
      return sendJson(reply, denied.status, { error: denied.message }, { 'x-error-code': denied.code });
    }
    const rest = decodeURIComponent(parts.slice(api ? 5 : 4).join('/'));
    if (api && action === 'tree' && request.method === 'GET') return tree(reply, url, repo, rest);
    if (api && action === 'refs') return refs(reply, repo);
    if (!api && action === 'resolve') return resolve(request, reply, repo, rest);
    if (request.method !== 'POST') return sendJson(reply, 404, { error: 'Not found' });
    if (request.headers.authorization !== `Bearer ${token}`) {
      request.resume();
      return sendJson(reply, 401, { error: 'Invalid credentials in Authorization header' });
    }
    const body = await readBody(request);
    if (api && action === 'preupload') return preupload(reply, body);
    if (gitLfs && parts.slice(3).join('/') === 'info/lfs/objects/batch') return lfsBatch(reply, body);
    if (api && action === 'commit') return commit(reply, repo, rest, body);
    sendJson(reply, 404, { error: 'Not found' });
  }

  function tree(reply: Reply, url: URL, repo: Repo, revisionAndPath: string) {
    const split = splitRevision(repo, revisionAndPath);
    if (!split) return revisionNotFound(reply, revisionAndPath);
    const entries = treeEntries(
      repo.revisions.get(split.revision) ?? [],
      split.path,
      url.searchParams.get('recursive') === 'true',
    );
    if (!entries) {
      return sendJson(
        reply,
        404,
        { error: `Entry not found: ${split.path}` },
        { 'x-error-code': 'EntryNotFound' },
      );
    }
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
    const ref = (name: string) => ({
      name,
      ref: name.startsWith('refs/') ? name : `refs/heads/${name}`,
      targetCommit: repo.commits.get(name),
    });
    const names = [...repo.revisions.keys()];
    sendJson(reply, 200, {
      branches: names.filter((name) => !name.startsWith('refs/')).map(ref),
      converts: names
        .filter((name) => name.startsWith('refs/convert/'))
        .map((name) => ({ ...ref(name), name: name.split('/')[2] })),
      tags: [],
    });
  }

  function resolve(request: http.IncomingMessage, reply: Reply, repo: Repo, revisionAndPath: string) {
    const split = splitRevision(repo, revisionAndPath);
    if (!split) return revisionNotFound(reply, revisionAndPath);
    const file = repo.revisions.get(split.revision)?.find((entry) => entry.path === split.path);
    if (!file) {
      return sendJson(
        reply,
        404,
        { error: `Entry not found: ${split.path}` },
        { 'x-error-code': 'EntryNotFound' },
      );
    }
    const commitHeader = { 'x-repo-commit': repo.commits.get(split.revision) ?? '' };
    if (!file.lfs)
      return serveBytes(request, reply, repo.spec.id, file, { etag: `"${file.oid}"`, ...commitHeader });
    const key = `${file.lfs}-${createHash('sha1').update(`${repo.spec.id}/${file.path}`).digest('hex').slice(0, 8)}`;
    cdnFiles.set(key, { repo: repo.spec.id, file });
    reply.writeHead(302, {
      location: `${cdnUrl}/files/${key}?X-Amz-Signature=loopback`,
      'x-linked-size': String(file.size),
      'x-linked-etag': `"${file.lfs}"`,
      etag: `"${file.oid}"`,
      ...commitHeader,
    });
    reply.end();
  }

  function createRepo(request: http.IncomingMessage, reply: Reply) {
    if (request.headers.authorization !== `Bearer ${token}`) {
      request.resume();
      return sendJson(reply, 401, { error: 'Invalid credentials in Authorization header' });
    }
    readBody(request).then((body) => {
      const { name, organization, type } = JSON.parse(body.toString()) as Record<string, string>;
      const id = `${organization}/${name}`;
      if (type !== 'dataset') return sendJson(reply, 400, { error: 'only datasets here' });
      if (repos.has(id))
        return sendJson(reply, 409, {
          error: 'You already created this dataset repo',
          url: `${hubUrl}/datasets/${id}`,
        });
      repos.set(id, buildRepo({ id, private: true, revisions: { main: {} } }));
      sendJson(reply, 200, { url: `${hubUrl}/datasets/${id}`, name: id });
    });
  }

  function preupload(reply: Reply, body: Buffer) {
    const { files } = JSON.parse(body.toString()) as { files: Array<{ path: string; size: number }> };
    const mode = (file: { path: string; size: number }) => (isLfs(file.path, file.size) ? 'lfs' : 'regular');
    sendJson(reply, 200, { files: files.map((file) => ({ path: file.path, uploadMode: mode(file) })) });
  }

  function lfsBatch(reply: Reply, body: Buffer) {
    const { objects } = JSON.parse(body.toString()) as { objects: Array<{ oid: string; size: number }> };
    sendJson(reply, 200, {
      transfer: 'basic',
      objects: objects.map(({ oid, size }) =>
        uploads.has(oid)
          ? { oid, size }
          : { oid, size, actions: { upload: { href: `${cdnUrl}/upload/${oid}` } } },
      ),
    });
  }

  function receiveUpload(request: http.IncomingMessage, reply: Reply, oid: string) {
    readBody(request).then((bytes) => {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== oid) return sendJson(reply, 400, { error: `sha256 mismatch: got ${sha256}` });
      uploads.set(oid, bytes);
      reply.writeHead(200, { etag: `"${oid}"` }).end();
    });
  }

  function commit(reply: Reply, repo: Repo, branch: string, body: Buffer) {
    const lines = body
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { key: string; value: Record<string, string> });
    const files = new Map((repo.revisions.get(branch) ?? []).map((file) => [file.path, file]));
    let title = '';
    for (const { key, value } of lines) {
      if (key === 'header') title = value.summary;
      else if (key === 'deletedFile') files.delete(value.path);
      else if (key === 'file')
        files.set(value.path, storeFile(value.path, { bytes: Buffer.from(value.content, 'base64') }));
      else if (key === 'lfsFile') {
        const bytes = uploads.get(value.oid);
        if (!bytes) return sendJson(reply, 422, { error: `LFS object ${value.oid} was never uploaded` });
        files.set(value.path, storeFile(value.path, { bytes }));
      }
    }
    repo.revisions.set(
      branch,
      [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
    );
    const commitOid = createHash('sha1')
      .update(`${repo.spec.id}:${stats.commits.length}:${title}`)
      .digest('hex');
    repo.commits.set(branch, commitOid);
    const paths = lines.filter((line) => line.key !== 'header').map((line) => line.value.path);
    stats.commits.push({ repo: repo.spec.id, branch, title, paths });
    sendJson(reply, 200, { commitOid, commitUrl: `${hubUrl}/datasets/${repo.spec.id}/commit/${commitOid}` });
  }

  function accessProblem(repo: Repo, authorization: string | undefined) {
    const ok = authorization === `Bearer ${token}`;
    if (repo.spec.private && !ok) {
      return { status: 401, code: 'RepoNotFound', message: 'Repository not found' };
    }
    if (repo.spec.gated && !authorization) {
      return {
        status: 401,
        code: 'GatedRepo',
        message: `Access to dataset ${repo.spec.id} is restricted. You must be authenticated to access it.`,
      };
    }
    if (repo.spec.gated && !ok) {
      return {
        status: 403,
        code: 'GatedRepo',
        message: `Access to dataset ${repo.spec.id} is restricted and you are not in the authorized list.`,
      };
    }
    return undefined;
  }

  function serveBytes(
    request: http.IncomingMessage,
    reply: Reply,
    repoId: string,
    file: StoredFile,
    headers: Record<string, string>,
  ) {
    const key = `${repoId}/${file.path}`;
    const range = parseRange(request.headers.range, file.size);
    if (range === 'unsatisfiable') {
      reply.writeHead(416, { 'content-range': `bytes */${file.size}` }).end();
      return;
    }
    const [start, end] = range ?? [0, file.size - 1];
    const length = Math.max(0, end - start + 1);
    const base = {
      ...headers,
      'accept-ranges': 'bytes',
      'content-length': String(length),
      'content-type': 'application/octet-stream',
    };
    if (range) {
      stats.rangeRequests.set(key, (stats.rangeRequests.get(key) ?? 0) + 1);
      reply.writeHead(206, { ...base, 'content-range': `bytes ${start}-${end}/${file.size}` });
    } else reply.writeHead(200, base);
    if (request.method === 'HEAD' || length === 0) return void reply.end();
    stats.bytesServed.set(key, (stats.bytesServed.get(key) ?? 0) + length);
    if ('bytes' in file.source) return void reply.end(file.source.bytes.subarray(start, end + 1));
    createReadStream(file.source.disk, { start, end, highWaterMark: 1 << 18 }).pipe(reply);
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
    async fileBytes(repoId, revision, filePath) {
      const file = repos
        .get(repoId)
        ?.revisions.get(revision)
        ?.find((entry) => entry.path === filePath);
      if (!file) return undefined;
      if ('bytes' in file.source) return file.source.bytes;
      const { readFile } = await import('node:fs/promises');
      return readFile(file.source.disk);
    },
    close: () => Promise.all([closeServer(hub), closeServer(cdn)]).then(() => undefined),
  };
}

function revisionNotFound(reply: Reply, revisionAndPath: string) {
  sendJson(
    reply,
    404,
    { error: `Invalid rev id: ${revisionAndPath.split('/')[0]}` },
    { 'x-error-code': 'RevisionNotFound' },
  );
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

function sendJson(reply: Reply, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  reply.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  reply.end(text);
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
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
