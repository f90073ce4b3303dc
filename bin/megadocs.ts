#!/usr/bin/env node
// The megadocs command line: argument parsing, progress display and exit codes; no pipeline logic.
// Each subcommand lives in bin/commands/ and builds the same chain of stages the library exposes.
import { Command } from 'commander';
import { MegadocsError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import { register as registerFeed } from './commands/feed.js';
import { register as registerGenerate } from './commands/generate.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerMerge } from './commands/merge.js';
import { register as registerPack } from './commands/pack.js';
import { register as registerPull } from './commands/pull.js';
import { register as registerRun } from './commands/run.js';

const program = new Command('megadocs')
  .description('Turn web text into synthetic pre-training data and trainer-ready shards')
  .version(VERSION)
  .showHelpAfterError();

for (const register of [
  registerRun,
  registerGenerate,
  registerPack,
  registerInspect,
  registerFeed,
  registerPull,
  registerMerge,
])
  register(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof MegadocsError) {
    process.stderr.write(`megadocs: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
