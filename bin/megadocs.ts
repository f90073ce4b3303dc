#!/usr/bin/env node
// The megadocs command line: argument parsing, progress display and exit codes; no pipeline logic.
// Each subcommand lives in bin/commands/ and builds the same chain of stages the library exposes.
import { Command } from 'commander';
import { MegadocsError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';

const program = new Command('megadocs')
  .description('Turn web text into synthetic pre-training data and trainer-ready shards')
  .version(VERSION)
  .showHelpAfterError();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof MegadocsError) {
    process.stderr.write(`megadocs: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
