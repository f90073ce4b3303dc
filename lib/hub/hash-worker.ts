// The file hashing worker thread: reads a written file back (from the page cache) and answers its digest and size,
// so sha256 / git blob checks of pulled files run beside the downloads instead of on their thread. Protocol in hasher.ts.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { messageOf } from '../errors.js';
import { serveMessages } from '../worker-entry.js';
import type { HashReply, HashRequest } from './hasher.js';

const port = parentPort!;
/** Reused for every read: the thread does nothing but hash, so blocking reads cost no one and allocate nothing. */
const buffer = Buffer.allocUnsafe(4 << 20);

function hashFile(request: HashRequest): HashReply {
  const hash = createHash(request.algorithm).update(request.prefix);
  const fd = openSync(request.path, 'r');
  try {
    let size = 0;
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, read));
      size += read;
    }
    return { id: request.id, digest: hash.digest('hex'), size };
  } finally {
    closeSync(fd);
  }
}

serveMessages(port, (request: HashRequest) => {
  let reply: HashReply;
  try {
    reply = hashFile(request);
  } catch (error) {
    reply = { id: request.id, error: messageOf(error) };
  }
  port.postMessage(reply);
});
