// The rest of the issue-17 sweep, through the built CLI: usage errors exit 2 with a pointer to --help, run has no
// --format, commands load lazily, tiktoken paths, inspect's advice, empty inputs, worker caps, run's summary and ETA.
import { spawn } from 'node:child_process';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../bin/command-table.js';
import { STAGE_LINES } from '../bin/commands/run.js';
import { parseRunConfig } from '../lib/config.js';
import { newRunProgress } from '../lib/pipeline/run-stats.js';
import {
  CLI,
  type CliResult,
  REPO_ROOT,
  runCli,
  SHARED_TOKENIZERS,
  tempDir,
  waitCli,
} from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';

const FIXTURE = join(REPO_ROOT, 'fixtures/web-sample.jsonl');
/** The fixture's 12 documents hold this many o200k_base tokens with EOS (fewer than one 1024-token sequence). */
const FIXTURE_TOKENS = 698;

let server: OpenAiTestServer;
let dir: string;

beforeAll(async () => {
  server = await startOpenAiServer({ latency: 1 });
  dir = await tempDir('megadocs-sweep-');
});
afterAll(() => server.close());

/** `megadocs ARGS` run from `cwd`, with extra node options (e.g. an --import hook). */
function cliIn(cwd: string, args: string[], nodeOptions: string[] = []): Promise<CliResult> {
  const child = spawn(process.execPath, [...nodeOptions, CLI, ...args], {
    cwd,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return waitCli(child);
}

const llm = () => ['--llm', server.url, '--model', 'test-model', '--generations', '2', '--workers', '1'];

describe.concurrent('option and usage errors', () => {
  const cases: Array<{ args: string[]; command?: string; error: RegExp }> = [
    { args: ['run', '--bogus'], command: 'run', error: /unknown option '--bogus'/ },
    { args: ['pack', FIXTURE, '-o', 'x', '--shard-size', 'big'], command: 'pack', error: /--shard-size/ },
    { args: ['run', FIXTURE, '-o', 'x', '--llm', ','], command: 'run', error: /--llm/ },
    { args: ['run', FIXTURE, '-o', 'x', '--rank', 'first'], command: 'run', error: /--rank/ },
    { args: ['pack', FIXTURE, '-o', 'x', '--world-size', '0'], command: 'pack', error: /--world-size/ },
    { args: ['run', FIXTURE, '-o', 'x', '--threads', '0'], command: 'run', error: /--threads/ },
    { args: ['pack', '-o', 'x'], command: 'pack', error: /missing required argument 'inputs'/ },
    { args: ['inspect'], command: 'inspect', error: /missing required argument 'dir'/ },
    { args: ['nosuch'], error: /unknown command 'nosuch'/ },
  ];
  for (const { args, command, error } of cases) {
    it(`megadocs ${args.join(' ')}: exit 2, the error and one line pointing to --help`, async () => {
      const result = await runCli(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(error);
      const pointer = command
        ? `Run \`megadocs ${command} --help\` for the options.`
        : 'Run `megadocs --help` for the commands.';
      expect(result.stderr.trim().split('\n').at(-1)).toBe(pointer);
      expect(result.stderr).not.toContain('Usage:');
      expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(3);
    });
  }

  it('--help and --version exit 0', async () => {
    const version = await runCli(['--version']);
    expect([version.code, version.stdout.toString().trim()]).toEqual([0, '0.1.0']);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    const runHelp = await runCli(['run', '--help']);
    expect(runHelp.code).toBe(0);
    expect(runHelp.stdout.toString()).toContain('--shuffle-seed');
  });
});

describe('megadocs run offers the token formats only', () => {
  it('run --help offers mds, megatron and memmap; --format jsonl is refused before any work, pointing to generate', async () => {
    const help = await runCli(['run', '--help']);
    expect(help.stdout.toString()).toMatch(/--format <format>\s+mds, megatron, memmap/);
    const out = join(dir, 'format');
    const received = server.stats.received;
    const result = await runCli(['run', FIXTURE, '-o', out, ...llm(), '--format', 'jsonl']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"format" (--format): expected "mds"');
    expect(result.stderr).toContain('`megadocs generate` writes text');
    expect(server.stats.received).toBe(received);
  });
});

describe('the config error for inputs', () => {
  it('says a JSON array, not a comma-separated string it would not take', () => {
    const input = { inputs: 'a.jsonl,b.jsonl', out: 'out', llm: ['http://127.0.0.1:9/v1'], model: 'm' };
    expect(() => parseRunConfig(input, 'run.json')).toThrow(
      /"inputs" \(INPUTS\): expected a list \(a JSON array\), got "a\.jsonl,b\.jsonl"/,
    );
  });
});

describe('commands load lazily', () => {
  /** Node runs with a module hook that fails the import of any bin/commands/ module not named in ALLOWED. */
  async function withHook(args: string[], allowed: string[]): Promise<CliResult> {
    const hook = join(dir, 'command-hook.mjs');
    await writeFile(
      hook,
      `const allowed = ${JSON.stringify(allowed)};
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const name = /\\/bin\\/commands\\/([^/]+)$/.exec(resolved.url)?.[1];
  if (name && !allowed.includes(name)) throw new Error('command module loaded: ' + name);
  return resolved;
}\n`,
    );
    const register = join(dir, `register-${allowed.join('-') || 'none'}.mjs`);
    await writeFile(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`,
    );
    return cliIn(REPO_ROOT, args, ['--import', register]);
  }

  it('--version and --help import no command module; a command imports its own', async () => {
    const version = await withHook(['--version'], []);
    expect([version.code, version.stderr]).toEqual([0, '']);
    const help = await withHook(['--help'], []);
    expect(help.code).toBe(0);
    for (const { name } of COMMANDS) expect(help.stdout.toString()).toContain(`  ${name} [options]`);
    const inspect = await withHook(['inspect', '--help'], ['inspect.js']);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout.toString()).toContain('--decode');
    // The hook works: a command whose module is not allowed fails.
    expect((await withHook(['inspect', '--help'], [])).code).not.toBe(0);
  });

  it('lists each command with the usage its module declares (the table and the modules agree)', async () => {
    const listing = (await runCli(['--help'])).stdout.toString();
    for (const entry of COMMANDS) {
      const program = new Command('megadocs');
      (await entry.load()).register(program);
      const command = program.commands.find((each) => each.name() === entry.name)!;
      expect(listing).toContain(`  ${entry.name} ${command.usage()}`);
    }
    // `help NAME` shows the command's full help, as `NAME --help` does.
    expect((await runCli(['help', 'run'])).stdout.toString()).toContain('--shuffle-seed');
  });
});

describe('tiktoken: paths', () => {
  const llamaFile = join(SHARED_TOKENIZERS, 'meta-llama-3-8B.tiktoken');

  it('are recorded absolute (inspect --decode works from another directory) and identified by content', async () => {
    const out = join(dir, 'tiktoken');
    const spelled = `tiktoken:${relative(REPO_ROOT, llamaFile)}`;
    expect(spelled.startsWith('tiktoken:../')).toBe(true);
    const packed = await cliIn(REPO_ROOT, [
      'pack',
      FIXTURE,
      '-o',
      out,
      '--seq-len',
      '64',
      '--tokenizer',
      spelled,
      '-q',
    ]);
    expect([packed.code, packed.stderr]).toEqual([0, '']);
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    expect(manifest.options.tokenizer).toBe(`tiktoken:${llamaFile}`);
    const decoded = await cliIn(dir, ['inspect', out, '--decode', '1']);
    expect(decoded.code).toBe(0);
    expect(decoded.stdout.toString()).toContain('--- sample 0 ---');
    // The same file spelled otherwise, from another directory: the same run (complete), not other options.
    const again = await cliIn(dir, [
      'pack',
      FIXTURE,
      '-o',
      out,
      '--seq-len',
      '64',
      '--tokenizer',
      `tiktoken:${llamaFile}`,
    ]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('is already complete');
  });
});

describe('inspect', () => {
  it('on a damaged shard advises what works: the plain rerun is refused, --overwrite rewrites it', async () => {
    const out = join(dir, 'damaged');
    const args = ['pack', FIXTURE, '-o', out, '--seq-len', '64', '--workers', '1', '-q'];
    expect((await runCli(args)).code).toBe(0);
    await truncate(join(out, 'shard.00000.mds.zstd'), 50);
    const inspected = await runCli(['inspect', out, '-q']);
    expect(inspected.code).toBe(2);
    expect(inspected.stderr).toContain(
      `rerun the \`megadocs pack\` command that wrote ${out} with --overwrite`,
    );
    expect((await runCli(args)).stderr).toContain('is already complete');
    expect((await runCli([...args, '--overwrite'])).code).toBe(0);
    expect((await runCli(['inspect', out, '-q'])).code).toBe(0);
  });

  it('points at OUT/real and OUT/synthetic of a --streams separate run, and decodes each', async () => {
    const out = join(dir, 'separate');
    const run = await runCli([
      'run',
      FIXTURE,
      '-o',
      out,
      ...llm(),
      '--seq-len',
      '64',
      '--streams',
      'separate',
      '-q',
    ]);
    expect([run.code, run.stderr]).toEqual([0, '']);
    const whole = await runCli(['inspect', out]);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toContain(
      `megadocs inspect ${join(out, 'real')}, then megadocs inspect ${join(out, 'synthetic')}`,
    );
    for (const stream of ['real', 'synthetic']) {
      const decoded = await runCli(['inspect', join(out, stream), '--decode', '1']);
      expect(decoded.code).toBe(0);
      expect(decoded.stdout.toString()).toContain('--- sample 0 ---');
    }
    await truncate(join(out, 'real/shard.00000.mds.zstd'), 50);
    const damaged = await runCli(['inspect', join(out, 'real'), '-q']);
    expect(damaged.stderr).toContain(`rerun the \`megadocs run\` command that wrote ${out} with --overwrite`);
  });
});

describe('empty inputs and too many workers', () => {
  it('an input without documents ends with a warning, also under -q (and run exits)', async () => {
    const empty = join(dir, 'empty.jsonl');
    await writeFile(empty, '');
    const packed = await runCli(['pack', empty, '-o', join(dir, 'empty-pack'), '-q']);
    expect(packed.code).toBe(0);
    expect(packed.stderr).toMatch(/^warning: the inputs hold no documents \(1 file\(s\) read\)/);
    const run = await runCli(['run', empty, '-o', join(dir, 'empty-run'), ...llm(), '-q']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^warning: the inputs hold no documents/);
  }, 30_000);

  it('--workers above the cores is capped there, with a warning', async () => {
    const result = await runCli(['pack', FIXTURE, '-o', join(dir, 'workers'), '--workers', '500', '-q']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^warning: --workers 500 is more than the \d+ cores here: using \d+/);
  });
});

describe("run's summary", () => {
  it('shows the tokens each stream dropped, warns when a stream packed into nothing, names the compressor', async () => {
    const result = await runCli(['run', FIXTURE, '-o', join(dir, 'long'), ...llm(), '--seq-len', '1024']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `warning: all ${FIXTURE_TOKENS} tokens were dropped: the real stream is shorter than one sequence of 1024 tokens`,
    );
    expect(result.stderr).toMatch(
      new RegExp(`tail +${FIXTURE_TOKENS} real \\+ \\d+ synthetic tokens dropped, 0 padded`),
    );
    expect(result.stderr).toMatch(/compressor +(zstd-napi \(libzstd [\d.]+\)|zstd-codec \(wasm)/);
  });

  it("the Quickstart's settings give sequences of both streams", async () => {
    const result = await runCli([
      'run',
      FIXTURE,
      '-o',
      join(dir, 'quickstart'),
      ...llm(),
      '--max-tokens',
      '256',
      '--seq-len',
      '256',
    ]);
    expect(result.code).toBe(0);
    const [, real, synthetic] = /real (\d+), synthetic (\d+);/.exec(result.stderr) ?? [];
    expect(Number(real)).toBeGreaterThan(0);
    expect(Number(synthetic)).toBeGreaterThan(0);
  });

  it('names zstd-codec when it is asked for', async () => {
    const result = await runCli(['pack', FIXTURE, '-o', join(dir, 'codec'), '--seq-len', '64'], {
      MEGADOCS_ZSTD: 'zstd-codec',
    });
    expect(result.stderr).toMatch(/compressor +zstd-codec \(asked for\)/);
  });
});

describe("run's progress", () => {
  it('gives the ETA of the run from generation, with the document total extrapolated from the input size', () => {
    const progress = newRunProgress(Date.now() - 10_000);
    progress.inputBytes = 1000;
    Object.assign(progress.source, { files: 1, documents: 40, bytes: 500 });
    progress.generate.documents = 20;
    const [source, generate] = STAGE_LINES.map((render) => render(progress));
    // 80 documents in all (40 in the first half of the bytes), 60 left at 2 documents/s: ~30 s.
    expect(generate).toMatch(/20\/~80 docs.*ETA 30\.\ds$/);
    expect(source).not.toContain('ETA');
    expect(source).toContain('500 B of 1.00 kB read');
    // Once the input is read whole, its document count is exact.
    Object.assign(progress.source, { documents: 90, bytes: 1000 });
    expect(STAGE_LINES[1]!(progress)).toContain('20/~90 docs');
  });
});
