// The write side of the loopback Hub: repo creation, preupload, the LFS batch API, sha256-checked uploads to
// the "CDN", and ndjson commits: the endpoints @huggingface/hub's commit() calls when xet is off.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { buildRepo, isLfs, type Repo, storeFile } from './hub-repos.js';

type Reply = http.ServerResponse;

export interface CommitRecord {
  repo: string;
  branch: string;
  title: string;
  paths: string[];
}

export interface UploadContext {
  repos: Map<string, Repo>;
  commits: CommitRecord[];
  hubUrl(): string;
  cdnUrl(): string;
}

/** Handlers for the upload endpoints; LFS objects uploaded but not yet committed live in memory. */
export function uploadHandlers(context: UploadContext) {
  const objects = new Map<string, Buffer>();
  return {
    createRepo(reply: Reply, body: Buffer) {
      const { name, organization, type } = JSON.parse(body.toString()) as Record<string, string>;
      const id = `${organization}/${name}`;
      if (type !== 'dataset') return sendJson(reply, 400, { error: 'only dataset repos here' });
      const url = `${context.hubUrl()}/datasets/${id}`;
      if (context.repos.has(id))
        return sendJson(reply, 409, { error: 'You already created this dataset repo', url });
      context.repos.set(id, buildRepo({ id, private: true, revisions: { main: {} } }));
      sendJson(reply, 200, { url, name: id });
    },

    preupload(reply: Reply, body: Buffer) {
      const { files } = JSON.parse(body.toString()) as { files: Array<{ path: string; size: number }> };
      sendJson(reply, 200, {
        files: files.map((file) => ({
          path: file.path,
          uploadMode: isLfs(file.path, file.size) ? 'lfs' : 'regular',
        })),
      });
    },

    lfsBatch(reply: Reply, body: Buffer) {
      const { objects: asked } = JSON.parse(body.toString()) as {
        objects: Array<{ oid: string; size: number }>;
      };
      const href = (oid: string) => `${context.cdnUrl()}/upload/${oid}`;
      sendJson(reply, 200, {
        transfer: 'basic',
        objects: asked.map(({ oid, size }) =>
          objects.has(oid) ? { oid, size } : { oid, size, actions: { upload: { href: href(oid) } } },
        ),
      });
    },

    receiveUpload(reply: Reply, oid: string, bytes: Buffer) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== oid) return sendJson(reply, 400, { error: `sha256 mismatch: got ${sha256}` });
      objects.set(oid, bytes);
      reply.writeHead(200, { etag: `"${oid}"` }).end();
    },

    commit(reply: Reply, repo: Repo, branch: string, body: Buffer) {
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
        else if (key === 'file') {
          files.set(value.path, storeFile(value.path, { bytes: Buffer.from(value.content, 'base64') }));
        } else if (key === 'lfsFile') {
          const bytes = objects.get(value.oid);
          if (!bytes) return sendJson(reply, 422, { error: `LFS object ${value.oid} was never uploaded` });
          files.set(value.path, storeFile(value.path, { bytes }));
        }
      }
      repo.revisions.set(
        branch,
        [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
      );
      const commitOid = createHash('sha1')
        .update(`${repo.spec.id}:${context.commits.length}:${title}`)
        .digest('hex');
      repo.commits.set(branch, commitOid);
      const paths = lines.filter((line) => line.key !== 'header').map((line) => line.value.path);
      context.commits.push({ repo: repo.spec.id, branch, title, paths });
      const commitUrl = `${context.hubUrl()}/datasets/${repo.spec.id}/commit/${commitOid}`;
      sendJson(reply, 200, { commitOid, commitUrl });
    },
  };
}

export function sendJson(reply: Reply, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  reply.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  reply.end(text);
}

export function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
