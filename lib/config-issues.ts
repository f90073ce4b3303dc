// How a problem in a command's config reads: its JSON path, its flag (as that command spells it), what is
// accepted and what was given; all of them in one BAD_CONFIG error that ends with what to do.
import type { z } from 'zod';
import { MegadocsError } from './errors.js';

/** The command a config is for, as its errors name it. */
export interface ConfigCommand {
  name: 'pack' | 'generate' | 'run';
  keys: readonly string[];
  /** Keys that hold an object of flags, and that object's keys. */
  groups: Record<string, readonly string[]>;
  /** What to do, after the list of problems. */
  fix: string;
}

/** Flags whose default is on: the command line spells them `--no-...`. */
const NEGATED_FLAGS = new Set(['eos', 'jsonMode', 'shuffle']);
/** Keys not spelled as their flag. */
const FLAG_NAMES: Record<string, string> = { inputs: 'INPUTS', timeoutSeconds: '--timeout' };

/** The flag that sets `key`, spelled as on the command line. */
export function flagOf(key: string): string {
  const kebab = key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  return FLAG_NAMES[key] ?? (NEGATED_FLAGS.has(key) ? `--no-${kebab}` : `--${kebab}`);
}

export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

const TYPE_NAMES: Record<string, string> = {
  int: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list (a JSON array)',
  object: 'a JSON object',
};

/** The accepted keys closest to an unknown one (flag spelling, case, or a small typo). */
function closestKeys(key: string, accepted: readonly string[]): string[] {
  const plain = (name: string) => name.toLowerCase().replace(/[-_]/g, '');
  const wanted = plain(key);
  return accepted.filter((name) => {
    const candidate = plain(name);
    return candidate === wanted || candidate.startsWith(wanted) || wanted.startsWith(candidate);
  });
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown, command: ConfigCommand): string[] {
  const got = valueAt(input, issue.path);
  const at = (path: readonly PropertyKey[]) => {
    const jsonPath = path
      .map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`))
      .join('');
    const key = String(path.findLast((part) => typeof part === 'string'));
    const group = path.length === 1 ? command.groups[key] : undefined;
    return `"${jsonPath.slice(1)}" (${group ? group.map(flagOf).join(', ') : flagOf(key)})`;
  };
  switch (issue.code) {
    case 'unrecognized_keys': {
      const accepted = issue.path.length === 0 ? command.keys : (command.groups[String(issue.path[0])] ?? []);
      const prefix = issue.path.length === 0 ? '' : `${at(issue.path)}: `;
      return issue.keys.map((key) => {
        const near = closestKeys(key, accepted);
        return `${prefix}unknown key "${key}"${near.length ? ` (did you mean ${near.map((name) => `"${name}"`).join(' or ')}?)` : ''}; accepted keys: ${accepted.join(', ')}`;
      });
    }
    case 'invalid_value':
      return [
        `${at(issue.path)}: expected one of ${issue.values.map((value) => shown(value)).join(', ')}, got ${shown(got)}`,
      ];
    case 'invalid_type':
      if (got === undefined) return [`${at(issue.path)}: required, and missing`];
      return [
        `${at(issue.path)}: expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${shown(got)}`,
      ];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const sign = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      const expected =
        issue.origin === 'string'
          ? 'a non-empty string'
          : issue.origin === 'array'
            ? `at least ${String(bound)} item(s)`
            : `a number ${sign} ${String(bound)}`;
      return [`${at(issue.path)}: expected ${expected}, got ${shown(got)}`];
    }
    default:
      return [`${at(issue.path)}: ${issue.message}${got === undefined ? '' : `, got ${shown(got)}`}`];
  }
}

/** One BAD_CONFIG error for all of `issues`, each described; `source` names where the config came from. */
export function configError(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  command: ConfigCommand,
  source: string,
): MegadocsError {
  const problems = issues.flatMap((issue) => describeIssue(issue, input, command));
  const count = problems.length === 1 ? 'a problem' : `${problems.length} problems`;
  // The fix goes last, on its own line, after the list (a hint would be appended to the last problem).
  return new MegadocsError(
    'BAD_CONFIG',
    `${count} in the ${command.name} config:\n  ${problems.join('\n  ')}\n${command.fix}`,
    { where: source },
  );
}
