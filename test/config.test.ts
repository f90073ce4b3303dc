// The `megadocs run` config: defaults, list forms, and errors that name the JSON path, the flag, the accepted
// values and what was given; the command's flag defaults must agree with the schema's.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { register } from '../bin/commands/run.js';
import {
  flagOf,
  parseGenerateConfig,
  parsePackConfig,
  parseRunConfig,
  RUN_CONFIG_KEYS,
  readRunConfigFile,
} from '../lib/config.js';
import { MegadocsError } from '../lib/errors.js';

const MINIMAL = { inputs: ['data.jsonl'], out: 'out', llm: ['http://127.0.0.1:8000/v1'], model: 'm' };
const scratch = await mkdtemp(path.join(tmpdir(), 'megadocs-config-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

function problemsOf(
  input: unknown,
  parse: (input: unknown, source: string) => unknown = parseRunConfig,
): string {
  try {
    parse(input, 'run.json');
  } catch (error) {
    expect(error).toBeInstanceOf(MegadocsError);
    expect((error as MegadocsError).code).toBe('BAD_CONFIG');
    expect((error as MegadocsError).where).toBe('run.json');
    return (error as MegadocsError).message;
  }
  throw new Error('the config was accepted');
}

describe('parseRunConfig', () => {
  it('defaults --concurrency to auto with servers and to 4 with a local: model (auto too), unless given', () => {
    expect(parseRunConfig(MINIMAL, 'run.json').concurrency).toBe('auto');
    const local = { ...MINIMAL, llm: ['local:models/tiny.gguf'], model: undefined };
    expect(parseRunConfig(local, 'run.json').concurrency).toBe(4);
    expect(parseRunConfig({ ...local, concurrency: 'auto' }, 'run.json').concurrency).toBe(4);
    expect(parseRunConfig({ ...local, concurrency: 12 }, 'run.json').concurrency).toBe(12);
  });

  it('fills in the defaults of every stage', () => {
    const config = parseRunConfig(MINIMAL, 'run.json');
    expect(config).toMatchObject({
      recipe: 'rephrase',
      assemble: 'stitch',
      original: 'back',
      separator: 'eos',
      join: '\n\n',
      thoughtOpen: '<think>',
      thoughtClose: '</think>',
      minGenerations: 1,
      streams: 'mixed',
      realEpochs: 1,
      shuffle: true,
      shuffleSeed: 0,
      tokenizer: 'o200k_base',
      seqLen: 4096,
      tail: 'drop',
      compression: 'zstd:3',
      hashes: ['sha1'],
      concurrency: 'auto',
    });
    expect(config.syntheticWeight).toBeUndefined();
  });

  it('takes lists as arrays or comma-separated strings, like the flags', () => {
    const config = parseRunConfig(
      { ...MINIMAL, llm: 'http://a:1/v1, http://b:2/v1', hashes: 'sha1,md5', styles: ['wiki', 'qa'] },
      'run.json',
    );
    expect(config.llm).toEqual(['http://a:1/v1', 'http://b:2/v1']);
    expect(config.hashes).toEqual(['sha1', 'md5']);
    expect(config.styles).toEqual(['wiki', 'qa']);
  });

  it('names the path, the flag, the accepted values and the value given', () => {
    const message = problemsOf({
      ...MINIMAL,
      assemble: 'stich',
      seqLen: 0,
      inputs: ['a.jsonl', 7],
      tail: 'cut',
    });
    expect(message).toMatch(/^run\.json: 4 problems in the run config:\n {2}"/);
    expect(message).toMatch(/\nFix these keys in the config file, or pass the flags on the command line/);
    expect(message).toContain(
      '"assemble" (--assemble): expected one of "stitch", "stretch", "none", got "stich"',
    );
    expect(message).toContain('"seqLen" (--seq-len): expected a number >= 1, got 0');
    expect(message).toContain('"inputs[1]" (INPUTS): expected a string, got 7');
    expect(message).toContain('"tail" (--tail): expected one of "drop", "pad", "keep", got "cut"');
  });

  it('says which required keys are missing and what a wrong type was', () => {
    const message = problemsOf({ llm: [], realEpochs: 1.5, shuffle: 'no' });
    expect(message).toContain('"inputs" (INPUTS): required, and missing');
    expect(message).toContain('"out" (--out): required, and missing');
    expect(message).toContain('"llm" (--llm): expected at least 1 item(s), got []');
    expect(message).toContain('"realEpochs" (--real-epochs): expected a whole number, got 1.5');
    expect(message).toContain('"shuffle" (--no-shuffle): expected true or false, got "no"');
    expect(problemsOf({ ...MINIMAL, llm: ['localhost:8000'] })).toContain(
      '"llm[0]" (--llm): expected an http:// or https:// base URL such as http://host:8000/v1, or local:MODEL.gguf, got "localhost:8000"',
    );
  });

  it('leaves the model of servers to ask them; a local model is named after its file and runs alone', () => {
    const { model: _model, ...noModel } = MINIMAL;
    expect(parseRunConfig(noModel, 'run.json').model).toBeUndefined();
    const local = parseRunConfig({ ...noModel, llm: 'local:../models/stories260K.gguf' }, 'run.json');
    expect(local.model).toBe('stories260K.gguf');
    expect(parseRunConfig({ ...MINIMAL, llm: ['local:m.gguf'], threads: 2 }, 'run.json')).toMatchObject({
      model: 'm',
      threads: 2,
    });
    expect(problemsOf({ ...MINIMAL, llm: ['local:m.gguf', 'http://a:1/v1'] })).toContain(
      '"llm" (--llm): a local: model runs alone',
    );
    expect(problemsOf({ ...MINIMAL, llm: ['local:hf:org'] })).toContain(
      '"llm" (--llm): --llm local:hf:org: a Hub model',
    );
  });

  it('rejects unknown keys, suggests the accepted spelling and lists the accepted keys', () => {
    const message = problemsOf({ ...MINIMAL, 'seq-len': 2048 });
    expect(message).toContain('unknown key "seq-len" (did you mean "seqLen"?); accepted keys: inputs, out,');
    for (const key of ['syntheticWeight', 'realEpochs', 'minGenerations', 'thoughtOpen'])
      expect(message).toContain(key);
  });

  it('checks options against each other and against the tokenizer and compression specs', () => {
    expect(problemsOf({ ...MINIMAL, recipe: 'stretch' })).toContain(
      '"assemble" (--assemble): the stretch recipe makes rationales that go between the pieces of their document',
    );
    expect(problemsOf({ ...MINIMAL, assemble: 'stretch', recipe: 'maga' })).toContain(
      '"stretch" needs the rationales',
    );
    expect(problemsOf({ ...MINIMAL, syntheticWeight: 0.5, realEpochs: 0 })).toContain(
      '"syntheticWeight" (--synthetic-weight): a weight needs real tokens',
    );
    expect(problemsOf({ ...MINIMAL, syntheticWeight: 1 })).toContain(
      '"syntheticWeight" (--synthetic-weight): expected a number < 1, got 1',
    );
    expect(problemsOf({ ...MINIMAL, format: 'jsonl' })).toContain('"format" (--format): expected "mds"');
    expect(problemsOf({ ...MINIMAL, tokenizer: 'gpt5' })).toMatch(
      /"tokenizer" \(--tokenizer\): .*unknown tokenizer "gpt5"/,
    );
    expect(problemsOf({ ...MINIMAL, compression: 'lz4' })).toMatch(/"compression" \(--compression\): /);
    expect(() =>
      parseRunConfig({ ...MINIMAL, recipe: 'stretch', assemble: 'stretch' }, 'run.json'),
    ).not.toThrow();
  });

  it('spells flags the way the command line does', () => {
    expect(flagOf('syntheticWeight')).toBe('--synthetic-weight');
    expect(flagOf('eos')).toBe('--no-eos');
    expect(flagOf('nPerRequest')).toBe('--n-per-request');
  });
});

describe('readRunConfigFile', () => {
  it('reads the example config, which is valid', async () => {
    const example = path.resolve(import.meta.dirname, '../examples/run-config.json');
    const config = parseRunConfig(await readRunConfigFile(example), example);
    expect(config).toMatchObject({
      generations: 16,
      realEpochs: 16,
      syntheticWeight: 0.75,
      assemble: 'stitch',
    });
  });

  it('names the file of a JSON syntax error, and refuses a non-object', async () => {
    const broken = path.join(scratch, 'broken.json');
    await writeFile(broken, '{"inputs": ["a"],\n "out": }');
    await expect(readRunConfigFile(broken)).rejects.toThrow(`${broken}: the config file is not valid JSON (`);
    const array = path.join(scratch, 'array.json');
    await writeFile(array, '[1, 2]');
    await expect(readRunConfigFile(array)).rejects.toThrow(/holds \[1,2\], not a JSON object/);
    await expect(readRunConfigFile(path.join(scratch, 'missing.json'))).rejects.toThrow(
      /cannot read the config file/,
    );
  });
});

describe('the run command', () => {
  const program = new Command();
  register(program);
  const command = program.commands.find((candidate) => candidate.name() === 'run')!;

  it('declares a flag for every config key', () => {
    const attributes = new Set(command.options.map((option) => option.attributeName()));
    for (const key of RUN_CONFIG_KEYS) if (key !== 'inputs') expect(attributes, key).toContain(key);
  });

  it('shows the same defaults in --help as the config applies', () => {
    const defaults = parseRunConfig(MINIMAL, 'run.json') as Record<string, unknown>;
    let compared = 0;
    for (const option of command.options) {
      const key = option.attributeName();
      // --llm's [] stands for "none given": the config requires at least one server.
      if (option.defaultValue === undefined || !RUN_CONFIG_KEYS.includes(key) || key === 'llm') continue;
      const asGiven = parseRunConfig({ ...MINIMAL, [key]: option.defaultValue }, 'flags') as Record<
        string,
        unknown
      >;
      expect(asGiven[key], key).toEqual(defaults[key]);
      compared += 1;
    }
    expect(compared).toBeGreaterThan(30);
  });
});

describe('parseRunConfig, across fields', () => {
  it('refuses more --min-generations than the generations asked (each recipe counting its own)', () => {
    expect(problemsOf({ ...MINIMAL, generations: 2, minGenerations: 5 })).toContain(
      '"minGenerations" (--min-generations): expected at most 2, the generations asked per document (--generations)',
    );
    expect(problemsOf({ ...MINIMAL, minGenerations: 5 })).toContain(
      "expected at most 4, the generations asked per document (the rephrase recipe's default)",
    );
    // MAGA asks for 5 genre/audience pairs, one rewrite each; stretch's G is its number of split points.
    expect(problemsOf({ ...MINIMAL, recipe: 'maga', minGenerations: 6 })).toContain('expected at most 5');
    expect(parseRunConfig({ ...MINIMAL, recipe: 'maga', minGenerations: 5 }, 'run.json').minGenerations).toBe(
      5,
    );
    const stretch = { ...MINIMAL, recipe: 'stretch', assemble: 'stretch', generations: 3 };
    expect(problemsOf({ ...stretch, minGenerations: 4 })).toContain('expected at most 3');
    expect(() => parseRunConfig({ ...stretch, minGenerations: 3 }, 'run.json')).not.toThrow();
    // A recipe file's own count is known only once it is read.
    expect(() =>
      parseRunConfig({ ...MINIMAL, recipe: 'mine.json', minGenerations: 9 }, 'run.json'),
    ).not.toThrow();
  });

  it('bounds --seq-len, checks --hashes against the supported ones, and takes --tail pad (EOS pads)', () => {
    expect(problemsOf({ ...MINIMAL, seqLen: 99_999_999_999 })).toContain(
      '"seqLen" (--seq-len): expected a number <= 16777216, got 99999999999',
    );
    const hashes = problemsOf({ ...MINIMAL, hashes: 'sha1,md7' });
    expect(hashes).toContain('"hashes" (--hashes): unsupported shard hash "md7". Use any of ');
    expect(hashes).toContain('sha256');
    expect(parseRunConfig({ ...MINIMAL, tail: 'pad' }, 'run.json').tail).toBe('pad');
  });
});

describe('parsePackConfig', () => {
  const PACK = { inputs: ['data.jsonl'], out: 'out' };

  it('fills in every default of a partial config, record options included', () => {
    const config = parsePackConfig(PACK, 'runPack');
    expect(config).toMatchObject({
      overwrite: false,
      record: { textField: 'text', idField: 'id', onError: 'fail' },
      tokenizer: 'o200k_base',
      eos: true,
      seqLen: 4096,
      tail: 'drop',
      format: 'mds',
      boundaries: false,
      compression: 'zstd:3',
      shardSize: 1 << 26,
      hashes: ['sha1'],
    });
    expect(config.workers).toBeGreaterThan(0);
    expect(config.bos).toBeUndefined(); // BOS as the tokenizer's model does by default
    expect(config.rank).toBeUndefined();
    expect(parsePackConfig({ ...PACK, record: { textField: 'body' } }, 'runPack').record).toEqual({
      textField: 'body',
      idField: 'id',
      onError: 'fail',
    });
    expect(parsePackConfig(config, 'runPack')).toEqual(config);
  });

  it('takes a resolved rank (its source is not part of the config) and --tail pad', () => {
    const config = parsePackConfig(
      { ...PACK, tail: 'pad', rank: { rank: 1, worldSize: 2, source: '--rank/--world-size' } },
      'runPack',
    );
    expect(config.rank).toEqual({ rank: 1, worldSize: 2 });
    expect(config.tail).toBe('pad');
  });

  it('names each problem with its path and flag, and points at megadocs pack --help', () => {
    const message = problemsOf(
      {
        ...PACK,
        seqLen: 99_999_999_999,
        hashes: 'sha1,md7',
        compression: 'gzip',
        format: 'parquet',
        record: { text_field: 'body', onError: 'ignore' },
        rank: { rank: 2, worldSize: 2 },
      },
      parsePackConfig,
    );
    expect(message).toMatch(/^run\.json: 4 problems in the pack config:\n/);
    expect(message).toContain('"seqLen" (--seq-len): expected a number <= 16777216, got 99999999999');
    expect(message).toContain(
      '"format" (--format): expected one of "mds", "jsonl", "megatron", "memmap", got "parquet"',
    );
    expect(message).toContain('"record.onError" (--on-error): expected one of "fail", "skip", got "ignore"');
    expect(message).toContain(
      '"record" (--text-field, --id-field, --on-error): unknown key "text_field" (did you mean "textField"?); accepted keys: textField, idField, onError',
    );
    expect(message).toMatch(
      /\nFix these keys of the config, or pass the flags on the command line \(see megadocs pack --help\)$/,
    );
    // The checks across fields run once every field is valid.
    const crossed = problemsOf(
      { ...PACK, hashes: 'sha1,md7', compression: 'gzip', rank: { rank: 2, worldSize: 2 } },
      parsePackConfig,
    );
    expect(crossed).toContain('"hashes" (--hashes): unsupported shard hash "md7"');
    expect(crossed).toContain('"compression" (--compression): unknown compression "gzip"');
    expect(crossed).toContain('"rank.rank" (--rank): expected a rank below worldSize (2)');
  });

  it('says what is missing, and which keys pack takes', () => {
    const missing = problemsOf({ rank: { rank: 0 } }, parsePackConfig);
    expect(missing).toContain('"inputs" (INPUTS): required, and missing');
    expect(missing).toContain('"out" (--out): required, and missing');
    expect(missing).toContain('"rank.worldSize" (--world-size): required, and missing');
    const unknown = problemsOf({ ...PACK, seq_len: 2048, llm: ['http://a:1/v1'] }, parsePackConfig);
    expect(unknown).toContain('unknown key "seq_len" (did you mean "seqLen"?); accepted keys: inputs, out,');
    expect(unknown).toContain('unknown key "llm"; accepted keys:');
    expect(unknown).not.toContain('nPerRequest');
    expect(problemsOf({ ...PACK, tokenizer: 'gpt5' }, parsePackConfig)).toMatch(
      /"tokenizer" \(--tokenizer\): unknown tokenizer "gpt5"/,
    );
  });
});

describe('parseGenerateConfig', () => {
  const GENERATE = { inputs: ['data.jsonl'], out: 'out', llm: 'http://127.0.0.1:8000/v1', model: 'm' };

  it('fills in every default of a partial config: concurrency, timeout, record options', () => {
    expect(parseGenerateConfig(GENERATE, 'runGenerate')).toMatchObject({
      llm: ['http://127.0.0.1:8000/v1'],
      model: 'm',
      record: { textField: 'text', idField: 'id', onError: 'fail' },
      api: 'chat',
      apiKeyEnv: 'OPENAI_API_KEY',
      concurrency: 'auto',
      maxRetries: 8,
      timeoutSeconds: 600,
      recipe: 'rephrase',
      nPerRequest: 16,
      seed: 0,
      onTruncated: 'keep',
      tokenizer: 'o200k_base',
      jsonMode: true,
      compression: 'zstd:3',
      shardSize: 1 << 26,
    });
    const local = parseGenerateConfig(
      { ...GENERATE, llm: ['local:models/tiny.gguf'], model: undefined },
      'x',
    );
    expect(local).toMatchObject({ model: 'tiny.gguf', concurrency: 4 });
    expect(parseGenerateConfig(local, 'x')).toEqual(local);
  });

  it('names each problem with its path and flag (--timeout for timeoutSeconds), pointing at megadocs generate --help', () => {
    const message = problemsOf(
      { ...GENERATE, llm: [], timeoutSeconds: 0, api: 'rest', record: { onError: 'ignore' }, timeout: 5 },
      parseGenerateConfig,
    );
    expect(message).toContain(' in the generate config:\n');
    expect(message).toContain('"llm" (--llm): expected at least 1 item(s), got []');
    expect(message).toContain('"timeoutSeconds" (--timeout): expected a number >= 0.001, got 0');
    expect(message).toContain('"api" (--api): expected one of "chat", "completions", got "rest"');
    expect(message).toContain('"record.onError" (--on-error): expected one of "fail", "skip", got "ignore"');
    expect(message).toContain('unknown key "timeout" (did you mean "timeoutSeconds"?)');
    expect(message).toContain('(see megadocs generate --help)');
    expect(problemsOf({ ...GENERATE, compression: 'zstd:12' }, parseGenerateConfig)).toContain(
      '"compression" (--compression): zstd level 12 is not supported',
    );
    expect(problemsOf({ ...GENERATE, seqLen: 2048 }, parseGenerateConfig)).toContain(
      'unknown key "seqLen"; accepted',
    );
  });
});
