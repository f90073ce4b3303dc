#!/usr/bin/env node
// The megadocs command line: argument parsing, progress display and exit codes; no pipeline logic.
// Each subcommand lives in bin/commands/ and is imported only when it runs (bin/command-table.ts lists them).
import { Command, CommanderError } from 'commander';
import { MegadocsError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import { COMMANDS, commandFor, helpPointer } from './command-table.js';

const program = new Command('megadocs')
  .description('Turn web text into synthetic pre-training data and trainer-ready shards')
  .version(VERSION)
  .showHelpAfterError(helpPointer())
  .configureHelp({ subcommandTerm: (command) => `${command.name()} ${command.usage()}` })
  .exitOverride();

/** The command the arguments name (`megadocs NAME ...` or `megadocs help NAME`); the only options before it take no value. */
function requestedCommand(args: readonly string[]): string | undefined {
  const [first, second] = args.filter((arg) => !arg.startsWith('-'));
  return first === 'help' ? second : first;
}

const requested = requestedCommand(process.argv.slice(2));
for (const entry of COMMANDS) {
  // The others only need their name, arguments and description, for the list of commands.
  if (entry.name === requested) (await entry.load()).register(program);
  else commandFor(program, entry.name);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Commander has printed the usage error (and the pointer to --help); --help and --version exit 0.
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  if (error instanceof MegadocsError) {
    process.stderr.write(`megadocs: ${error.message}\n`);
    // 3: the work ended but too much of it failed (status incomplete; the same command continues it).
    process.exit(error.code === 'INCOMPLETE' ? 3 : 2);
  }
  throw error;
}
