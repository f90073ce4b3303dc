// Hub transfer speed against the loopback Hub (run in a process of its own), each figure divided by a baseline
// measured in the same run. Usage: node dist/bench/hub.js [copies] [rounds]   (or: npx tsx bench/hub.ts)
//   pull:    megadocs pull throughput / a plain undici download of the same files    (target >= 0.9)
//   parquet: documents/s streaming Parquet from the loopback Hub / reading it locally  (target >= 0.8)
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Agent, interceptors, request } from 'undici';
import { createHubClient, type HubClient } from '../lib/hub/client.js';
import { type HubFile, resolveHubFiles } from '../lib/hub/files.js';
import { pullHubFiles } from '../lib/hub/pull.js';
import { hubFileUrl, hubShard } from '../lib/hub/shard.js';
import { parseHubUrl } from '../lib/hub/url.js';
import { localShard } from '../lib/sources/local.js';
import { readDocs } from '../lib/sources/read.js';
import type { ShardRef } from '../lib/sources/types.js';
import { drain } from '../lib/stream.js';

const CONCURRENCY = 8;

/** The checkout's root (where package.json is), from bench/ or dist/bench/. */
function repositoryRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) directory = path.dirname(directory);
  return directory;
}

/** Starts test/helpers/hub-server-main.ts under tsx in its own process; resolves with its URL. */
async function startServer(root: string, copies: number): Promise<{ url: string; child: ChildProcess }> {
  const entry = path.join(root, 'test/helpers/hub-server-main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', entry, String(copies)], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`the loopback Hub exited with ${code}`)));
  });
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

/** The baseline: GET each resolve URL with undici.request (redirects followed), streamed to a file. */
async function plainDownload(files: HubFile[], client: HubClient, dir: string, agent: Agent): Promise<void> {
  const dispatcher = agent.compose(interceptors.redirect({ maxRedirections: 3 }));
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      const target = path.join(dir, file.path);
      await fs.mkdir(path.dirname(target), { recursive: true });
      const response = await request(hubFileUrl(client, file), { dispatcher });
      await pipeline(response.body, createWriteStream(target));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function documents(shards: ShardRef[]): Promise<number> {
  let count = 0;
  await drain(readDocs(shards), () => {
    count += 1;
  });
  return count;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const copies = Number(process.argv[2] ?? 48);
  const rounds = Number(process.argv[3] ?? 9);
  const root = repositoryRoot();
  const server = await startServer(root, copies);
  const agent = new Agent({ connections: CONCURRENCY + 2 });
  const client = createHubClient({ endpoint: server.url, dispatcher: agent });
  const scratch = await fs.mkdtemp(path.join(tmpdir(), 'megadocs-bench-hub-'));
  try {
    const files = [
      ...(await resolveHubFiles(parseHubUrl('hf://datasets/HuggingFaceFW/fineweb/data/*/*.parquet'), client)),
      ...(await resolveHubFiles(parseHubUrl('hf://datasets/mlfoundations/dclm-baseline-1.0'), client)),
    ];
    const bytes = files.reduce((sum, file) => sum + file.size, 0);
    const pull: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const plainDir = path.join(scratch, `plain-${round}`);
      const pullDir = path.join(scratch, `pull-${round}`);
      plain.push(await seconds(() => plainDownload(files, client, plainDir, agent)));
      pull.push(await seconds(() => pullHubFiles(files, pullDir, client, { concurrency: CONCURRENCY })));
      await fs.rm(plainDir, { recursive: true });
      await fs.rm(pullDir, { recursive: true });
    }
    const mbps = (time: number) => bytes / time / 1e6;
    console.log(
      `hub pull: ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB, concurrency ${CONCURRENCY}, median of ${rounds}`,
    );
    console.log(`  plain undici download  ${mbps(median(plain)).toFixed(0)} MB/s`);
    console.log(
      `  megadocs pull          ${mbps(median(pull)).toFixed(0)} MB/s (sha256 verified, atomic landing)`,
    );
    console.log(`  ratio                  ${(median(plain) / median(pull)).toFixed(2)}  (target >= 0.9)`);

    const parquet = files.filter((file) => file.path.endsWith('.parquet')).slice(0, 32);
    const local = parquet.map(() => localShard(path.join(root, '../shared/data/fineweb-300.parquet')));
    const remote = parquet.map((file) => hubShard(file, client));
    const hubRates: number[] = [];
    const localRates: number[] = [];
    const perPass = await documents(local);
    for (let round = 0; round < rounds; round += 1) {
      localRates.push(perPass / (await seconds(() => documents(local))));
      hubRates.push(perPass / (await seconds(() => documents(remote))));
    }
    console.log(`hub parquet: ${parquet.length} shards of fineweb-300.parquet per pass, median of ${rounds}`);
    console.log(`  local file             ${median(localRates).toFixed(0)} docs/s`);
    console.log(`  loopback Hub (ranges)  ${median(hubRates).toFixed(0)} docs/s`);
    console.log(
      `  ratio                  ${(median(hubRates) / median(localRates)).toFixed(2)}  (target >= 0.8)`,
    );
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
    server.child.kill('SIGTERM');
    await agent.close();
  }
}

await main();
