// `megadocs efficiency fit BASELINE.csv` and `megadocs efficiency at BASELINE.csv --tokens D0 --loss L`: the
// data-efficiency arithmetic (lib/efficiency.ts) on a real-data-only baseline's (tokens, loss) rows.
import type { Command } from 'commander';
import { type EfficiencyFit, effectiveData, fitEfficiency } from '../../lib/efficiency.js';
import { readBaselineCsv } from '../../lib/efficiency-csv.js';
import { commandFor } from '../command-table.js';
import { numeric } from '../options.js';
import { formatCount } from '../progress.js';

function fitLine(fit: EfficiencyFit): string {
  return `L(D) = ${fit.A.toPrecision(6)} / D^${fit.alpha.toPrecision(6)} + ${fit.E.toPrecision(6)}`;
}

function printFit(fit: EfficiencyFit): void {
  const rows = fit.points.map(
    (point) =>
      `  ${formatCount(point.tokens).padStart(8)}  ${point.loss.toFixed(4).padStart(9)}  ${point.fitted.toFixed(4).padStart(9)}  ${point.residual >= 0 ? '+' : ''}${point.residual.toFixed(4)}`,
  );
  process.stdout.write(
    `${fitLine(fit)}\n  A ${fit.A.toPrecision(6)}, alpha ${fit.alpha.toPrecision(6)}, E ${fit.E.toPrecision(6)}; ` +
      `rmse ${fit.rmse.toPrecision(3)}, R^2 ${fit.r2.toFixed(4)}, ${fit.points.length} points\n` +
      `  ${'tokens'.padStart(8)}  ${'loss'.padStart(9)}  ${'fitted'.padStart(9)}  residual\n${rows.join('\n')}\n`,
  );
}

export function register(program: Command): void {
  const command = commandFor(program, 'efficiency')
    .option('--tokens <D0>', 'at: unique real tokens the method trained on', numeric)
    .option('--loss <L>', 'at: the loss the method reached', numeric)
    .option('--json', 'print the result as JSON on stdout', false);
  command.action(
    async (action: string, file: string, options: { tokens?: number; loss?: number; json: boolean }) => {
      if (action !== 'fit' && action !== 'at')
        command.error(`error: expected the action fit or at, got "${action}"`, { exitCode: 2 });
      if (action === 'at' && (options.tokens === undefined || options.loss === undefined))
        command.error(
          `error: efficiency at needs ${options.tokens === undefined ? '--tokens D0' : '--loss L'}`,
          {
            exitCode: 2,
          },
        );
      const fit = fitEfficiency(await readBaselineCsv(file));
      if (action === 'fit') {
        if (options.json) process.stdout.write(`${JSON.stringify(fit)}\n`);
        else printFit(fit);
        return;
      }
      const result = effectiveData(fit, Number(options.tokens), Number(options.loss));
      const { points: _points, ...law } = fit;
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ fit: law, ...result })}\n`);
        return;
      }
      process.stdout.write(
        result.defined
          ? `${fitLine(fit)}\nD_eff(${result.loss}) = ${formatCount(result.effectiveTokens)} tokens (${result.effectiveTokens.toPrecision(6)})\n` +
              `efficiency D_eff / D0 = ${result.efficiency.toFixed(3)}x (D0 = ${formatCount(result.tokens)})\n`
          : `${fitLine(fit)}\nD_eff(${result.loss}) is undefined: ${result.reason}\n`,
      );
    },
  );
}
