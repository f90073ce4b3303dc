// bench/startup: how long the CLI takes to answer `--version`, `--help` and `run --help`, next to a bare `node -e 0`
// (median of interleaved runs, so machine load hits all alike). Usage: node dist/bench/startup.js [runs] [CLI.js ...]
// (default: 15 runs of dist/bin/megadocs.js; name other builds, e.g. an older checkout's, to compare them).
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const TARGET_SECONDS = 0.2;
const runs = Number(process.argv[2] ?? 15);
const clis =
  process.argv.length > 3 ? process.argv.slice(3) : [path.resolve(import.meta.dirname, '../bin/megadocs.js')];

interface Case {
  label: string;
  args: string[];
}

const cases: Case[] = [
  { label: 'node -e 0', args: ['-e', '0'] },
  ...clis.flatMap((cli) =>
    [['--version'], ['--help'], ['run', '--help']].map((args) => ({
      label: `${clis.length > 1 ? `${cli} ` : ''}${args.join(' ')}`,
      args: [cli, ...args],
    })),
  ),
];

function seconds(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const samples = cases.map(() => [] as number[]);
for (let round = 0; round < runs; round += 1) {
  for (const [at, { args }] of cases.entries()) samples[at]!.push(seconds(args));
}
const bare = median(samples[0]!);
console.log(
  `startup, median of ${runs} interleaved runs (target: --version and --help under ${TARGET_SECONDS} s)`,
);
for (const [at, { label }] of cases.entries()) {
  const value = median(samples[at]!);
  const over = at === 0 ? '' : `  (node itself +${((value - bare) * 1000).toFixed(0)} ms)`;
  console.log(
    `  ${label.padEnd(Math.max(...cases.map((c) => c.label.length)))}  ${value.toFixed(3)} s${over}`,
  );
}
