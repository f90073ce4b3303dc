// `megadocs efficiency` and lib/efficiency.ts: the fit of L(D) = A / D^alpha + E recovers known parameters from
// noisy points, D_eff inverts it, and edge cases (too few points, L <= E, bad tokens, bad CSV) are refused clearly.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { effectiveData, fitEfficiency, lossAt } from '../lib/efficiency.js';
import { parseBaselineCsv } from '../lib/efficiency-csv.js';
import { runCli, tempDir } from './helpers/cli.js';

const TRUE = { A: 420, alpha: 0.31, E: 1.75 };

/** A seeded normal draw (Box-Muller on a small LCG), so the noisy points are the same every run. */
function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 1) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Baseline points at 12 token counts from 10M to 30B, loss from the true law plus noise of `sigma`. */
function baseline(sigma: number, seed = 7) {
  const noise = gaussian(seed);
  return Array.from({ length: 12 }, (_, i) => {
    const tokens = 1e7 * 3000 ** (i / 11);
    return { tokens, loss: lossAt(TRUE, tokens) + sigma * noise() };
  });
}

function csvOf(points: Array<{ tokens: number; loss: number }>): string {
  return `tokens,loss\n${points.map((point) => `${point.tokens},${point.loss}`).join('\n')}\n`;
}

describe('fitEfficiency', () => {
  it('recovers A, alpha and E exactly from noise-free points', () => {
    const fit = fitEfficiency(baseline(0));
    expect(fit.alpha).toBeCloseTo(TRUE.alpha, 4);
    expect(fit.E).toBeCloseTo(TRUE.E, 4);
    expect(fit.A / TRUE.A).toBeCloseTo(1, 3);
    expect(fit.rmse).toBeLessThan(1e-6);
  });

  it('recovers them within tolerance from noisy points, on several noise draws', () => {
    for (const seed of [1, 2, 3]) {
      const fit = fitEfficiency(baseline(0.004, seed));
      expect(Math.abs(fit.alpha - TRUE.alpha) / TRUE.alpha).toBeLessThan(0.1);
      expect(Math.abs(fit.E - TRUE.E)).toBeLessThan(0.05);
      // The fitted law predicts the noise-free loss closely across the range.
      for (const tokens of [1e7, 1e9, 3e10])
        expect(Math.abs(lossAt(fit, tokens) - lossAt(TRUE, tokens))).toBeLessThan(0.01);
      expect(fit.points.every((point) => Math.abs(point.residual) < 0.02)).toBe(true);
      expect(fit.A).toBeGreaterThanOrEqual(0);
    }
  });

  it('keeps the parameters non-negative when the data would pull one below 0', () => {
    // Loss rising with data: the best non-negative law is flat (A = 0) at the mean loss.
    const fit = fitEfficiency([
      { tokens: 1e6, loss: 3 },
      { tokens: 1e7, loss: 3.1 },
      { tokens: 1e8, loss: 3.2 },
    ]);
    expect(fit.A).toBe(0);
    expect(fit.E).toBeCloseTo(3.1, 6);
    // Losses that fall towards a negative asymptote (still positive here): E is held at 0.
    const steep = fitEfficiency(
      [1e6, 1e7, 1e8, 1e9].map((tokens) => ({ tokens, loss: 50 / tokens ** 0.2 - 0.5 })),
    );
    expect(steep.E).toBe(0);
    expect(steep.A).toBeGreaterThan(0);
  });

  it('refuses too few points, zero or negative tokens, and a non-finite loss, naming the row', () => {
    expect(() => fitEfficiency(baseline(0).slice(0, 2))).toThrow(/at least 3 points/);
    expect(() => fitEfficiency([1e6, 1e6, 1e6, 1e7].map((tokens) => ({ tokens, loss: 3 })))).toThrow(
      /2 different/,
    );
    expect(() => fitEfficiency([...baseline(0), { tokens: 0, loss: 3, where: 'b.csv:14' }])).toThrow(
      /b\.csv:14: tokens must be a positive number, got 0/,
    );
    expect(() => fitEfficiency([...baseline(0), { tokens: -5, loss: 3, where: 'b.csv:2' }])).toThrow(
      /b\.csv:2: tokens must be a positive number, got -5/,
    );
    expect(() => fitEfficiency([...baseline(0), { tokens: 5, loss: Number.NaN, where: 'b.csv:3' }])).toThrow(
      /b\.csv:3: loss must be a number/,
    );
  });
});

describe('effectiveData', () => {
  it('inverts the law: D_eff of the loss the baseline reaches at D is D', () => {
    const fit = fitEfficiency(baseline(0));
    const result = effectiveData(fit, 1e9, lossAt(TRUE, 4e9));
    expect(result.defined).toBe(true);
    if (!result.defined) return;
    expect(result.effectiveTokens / 4e9).toBeCloseTo(1, 3);
    expect(result.efficiency).toBeCloseTo(4, 2);
  });

  it('is undefined, with the reason, when L <= E', () => {
    const fit = fitEfficiency(baseline(0));
    for (const loss of [fit.E, fit.E - 0.1]) {
      const result = effectiveData(fit, 1e9, loss);
      expect(result.defined).toBe(false);
      if (!result.defined) expect(result.reason).toMatch(/at or below E = 1\.75/);
    }
  });

  it('refuses zero or negative D0', () => {
    const fit = fitEfficiency(baseline(0));
    expect(() => effectiveData(fit, 0, 2)).toThrow(/--tokens: expected a positive number of tokens/);
    expect(() => effectiveData(fit, -1, 2)).toThrow(/--tokens/);
  });
});

describe('parseBaselineCsv', () => {
  it('reads a header in any column order, scientific numbers, comments and blank lines', () => {
    const points = parseBaselineCsv(
      '# baseline\nrun,loss,tokens\na,3.2,1e9\n\nb,3.0,2_000_000_000\n',
      'b.csv',
    );
    expect(points).toEqual([
      { tokens: 1e9, loss: 3.2, where: 'b.csv:3' },
      { tokens: 2e9, loss: 3.0, where: 'b.csv:5' },
    ]);
    expect(parseBaselineCsv('1e9,3.2\n2e9,3.1\n', 'b.csv')).toHaveLength(2);
  });

  it('names the file and line of a bad row or header', () => {
    expect(() => parseBaselineCsv('tokens,loss\n1e9,3.2\n2e9,abc\n', 'b.csv')).toThrow(
      /b\.csv:3: expected two numbers \(tokens, loss\), got "2e9,abc"/,
    );
    expect(() => parseBaselineCsv('size,value\n1,2\n', 'b.csv')).toThrow(
      /b\.csv:1: the header names no tokens column/,
    );
    expect(() => parseBaselineCsv('\n# nothing\n', 'b.csv')).toThrow(
      /b\.csv: the baseline CSV holds no rows/,
    );
  });
});

describe('megadocs efficiency (CLI)', () => {
  it('fit prints the law and its residuals; at prints D_eff and the efficiency, or says it is undefined', async () => {
    const dir = await tempDir();
    const file = join(dir, 'baseline.csv');
    await writeFile(file, csvOf(baseline(0.002)));
    const fit = await runCli(['efficiency', 'fit', file]);
    expect(fit.stderr).toBe('');
    expect(fit.code).toBe(0);
    expect(fit.stdout.toString()).toMatch(/L\(D\) = \S+ \/ D\^0\.3\d+ \+ 1\.7\d+/);
    expect(fit.stdout.toString()).toMatch(/residual/);
    const json = await runCli(['efficiency', 'fit', file, '--json']);
    const parsed = JSON.parse(json.stdout.toString());
    expect(parsed.points).toHaveLength(12);
    expect(parsed.alpha).toBeCloseTo(TRUE.alpha, 1);

    const at = await runCli([
      'efficiency',
      'at',
      file,
      '--tokens',
      '1e9',
      '--loss',
      String(lossAt(TRUE, 1.8e9)),
    ]);
    expect(at.code).toBe(0);
    expect(at.stdout.toString()).toMatch(/efficiency D_eff \/ D0 = 1\.[78]\d*x/);
    const below = await runCli(['efficiency', 'at', file, '--tokens', '1e9', '--loss', '1.2', '--json']);
    expect(below.code).toBe(0);
    expect(JSON.parse(below.stdout.toString())).toMatchObject({ defined: false, loss: 1.2 });

    await writeFile(join(dir, 'two.csv'), 'tokens,loss\n1e9,3\n2e9,2.9\n');
    const few = await runCli(['efficiency', 'fit', join(dir, 'two.csv')]);
    expect(few.code).toBe(2);
    expect(few.stderr).toMatch(/at least 3 points/);
    const missing = await runCli(['efficiency', 'at', file, '--loss', '2']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--tokens/);
  });
});
