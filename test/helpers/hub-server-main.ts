// Runs the loopback Hub in a process of its own (benches measure the client, not a server sharing its
// event loop): `tsx test/helpers/hub-server-main.ts [COPIES]` prints {"url","cdnUrl"} as one JSON line.
import { SHARED_DATA, sharedDataRepos } from './hub-repos.js';
import { startHubServer } from './hub-server.js';

const copies = Number(process.argv[2] ?? 1);
const server = await startHubServer({ repos: sharedDataRepos(SHARED_DATA, copies) });
process.stdout.write(`${JSON.stringify({ url: server.url, cdnUrl: server.cdnUrl })}\n`);

const stop = () => {
  server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
