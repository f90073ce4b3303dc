// --transform FILE.mjs (repeatable) for the commands that run a chain (pack, generate, run): the ES modules
// whose named exports (documents, generations, megadocs, sequences) are users' stages at those points.
import type { Command } from 'commander';
import { loadTransformModule, type TransformModule } from '../lib/pipeline/transforms.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addTransformOption(command: Command, points: readonly string[]): Command {
  return command.option(
    '--transform <file.mjs>',
    `an ES module whose named exports (${points.join(', ')}) are stages inserted at those points; repeatable, applied in order`,
    collect,
  );
}

/** The modules named by --transform, loaded (and hashed for the run identity) before any work starts. */
export async function transformModulesFrom(options: Record<string, unknown>): Promise<TransformModule[]> {
  const files = (options.transform as string[] | undefined) ?? [];
  return Promise.all(files.map((file) => loadTransformModule(file)));
}
