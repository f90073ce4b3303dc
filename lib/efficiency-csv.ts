// Reads a baseline CSV for `megadocs efficiency`: one row per real-data-only run, its unique real tokens and its
// loss. A header names the columns (tokens/D, loss/L); without one the first two columns are taken.
import { readFile } from 'node:fs/promises';
import type { BaselinePoint } from './efficiency.js';
import { MegadocsError, messageOf } from './errors.js';

const TOKEN_COLUMNS = ['tokens', 'unique_tokens', 'real_tokens', 'd'];
const LOSS_COLUMNS = ['loss', 'l', 'val_loss', 'eval_loss'];

function cells(line: string): string[] {
  return line.split(',').map((cell) => cell.trim().replace(/^"(.*)"$/, '$1'));
}

/** A number cell: plain or scientific (`2.5e9`), `_` allowed as a digit separator. */
function numberIn(cell: string | undefined): number {
  if (cell === undefined || cell === '') return Number.NaN;
  return Number(cell.replaceAll('_', ''));
}

/** The points of a baseline CSV's text; errors name `file:line`. Blank lines and `#` comments are skipped. */
export function parseBaselineCsv(text: string, file: string): BaselinePoint[] {
  const rows = text
    .split(/\r?\n/)
    .map((line, index) => ({ line: index + 1, cells: cells(line) }))
    .filter((row) => row.cells.some((cell) => cell !== '') && !row.cells[0]!.startsWith('#'));
  if (rows.length === 0) {
    throw new MegadocsError('BAD_INPUT', 'the baseline CSV holds no rows', {
      where: file,
      hint: 'Write one row per baseline run: tokens,loss (a header line "tokens,loss" is allowed)',
    });
  }
  let tokensColumn = 0;
  let lossColumn = 1;
  const first = rows[0]!;
  if (first.cells.some((cell) => Number.isNaN(numberIn(cell)))) {
    const names = first.cells.map((cell) => cell.toLowerCase());
    tokensColumn = names.findIndex((name) => TOKEN_COLUMNS.includes(name));
    lossColumn = names.findIndex((name) => LOSS_COLUMNS.includes(name));
    if (tokensColumn < 0 || lossColumn < 0) {
      throw new MegadocsError(
        'BAD_INPUT',
        `the header names no ${tokensColumn < 0 ? 'tokens' : 'loss'} column (columns: ${first.cells.join(', ')})`,
        {
          where: `${file}:${first.line}`,
          hint: `Name the columns ${TOKEN_COLUMNS[0]} (or ${TOKEN_COLUMNS.slice(1).join(', ')}) and ${LOSS_COLUMNS[0]} (or ${LOSS_COLUMNS.slice(1).join(', ')})`,
        },
      );
    }
    rows.shift();
  }
  return rows.map((row) => {
    const where = `${file}:${row.line}`;
    const tokens = numberIn(row.cells[tokensColumn]);
    const loss = numberIn(row.cells[lossColumn]);
    if (Number.isNaN(tokens) || Number.isNaN(loss)) {
      throw new MegadocsError(
        'BAD_INPUT',
        `expected two numbers (tokens, loss), got "${row.cells.join(',')}"`,
        {
          where,
          hint: 'Each row is the unique real tokens of a baseline run and the loss it reached, e.g. 2.5e9,3.21',
        },
      );
    }
    return { tokens, loss, where };
  });
}

/** The points of the baseline CSV at `file`. */
export async function readBaselineCsv(file: string): Promise<BaselinePoint[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new MegadocsError('BAD_INPUT', `cannot read the baseline CSV (${messageOf(error)})`, {
      where: file,
      hint: 'Check the path',
    });
  }
  return parseBaselineCsv(text, file);
}
