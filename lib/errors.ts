// The one error class of the toolkit: a code, where it happened, and what the user can do about it.
// The CLI prints `message` (which already names the place and the fix) and exits with a non-zero code.

export type ErrorCode =
  | 'BAD_INPUT'
  | 'BAD_OPTION'
  | 'BAD_CONFIG'
  | 'IO'
  | 'CORRUPT'
  | 'TOKENIZER'
  | 'LLM'
  | 'HUB'
  | 'JOURNAL'
  | 'OUTPUT_EXISTS'
  | 'INTERRUPTED'
  | 'INCOMPLETE';

export interface ErrorContext {
  /** File, `file:line`, shard name, request id or field path the error is about. */
  where?: string;
  /** What the user should do. */
  hint?: string;
  cause?: unknown;
}

export class MegadocsError extends Error {
  readonly code: ErrorCode;
  readonly where?: string;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    const parts = [context.where ? `${context.where}: ${message}` : message];
    if (context.hint) parts.push(context.hint);
    super(parts.join('. '), { cause: context.cause });
    this.name = 'MegadocsError';
    this.code = code;
    this.where = context.where;
    this.hint = context.hint;
  }
}

/**
 * The run ended without its output because too much of its work failed (e.g. more documents than
 * `--max-failures` allows): status `incomplete` in megadocs.json, exit 3; the same command continues it.
 */
export class IncompleteRunError extends MegadocsError {
  constructor(message: string, context: ErrorContext = {}) {
    super('INCOMPLETE', message, context);
    this.name = 'IncompleteRunError';
  }
}

/** The message of anything thrown (zstd-codec throws strings, not Errors). */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
