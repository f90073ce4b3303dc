// The data-efficiency arithmetic of METHODS.md: fit L(D) = A / D^alpha + E (A, alpha, E >= 0) to a real-data-only
// baseline's (unique real tokens, loss) points, and invert it: D_eff(L) = (A / (L - E))^(1/alpha).
import { MegadocsError } from './errors.js';

/** One baseline run: unique real tokens D and the loss it reached. */
export interface BaselinePoint {
  tokens: number;
  loss: number;
  /** Where the point came from (`FILE:LINE`), for errors and residual tables. */
  where?: string;
}

export interface EfficiencyFit {
  A: number;
  alpha: number;
  E: number;
  /** Root mean square of the residuals (loss units). */
  rmse: number;
  /** 1 - SSE / total sum of squares around the mean loss. */
  r2: number;
  points: Array<BaselinePoint & { fitted: number; residual: number }>;
}

/** The least points a fit of three parameters takes. */
export const MIN_POINTS = 3;
/** The exponents searched first (profile grid), then refined between neighbours. */
const ALPHA_GRID = { from: 0.001, to: 3, steps: 600 };
const REFINE_ITERATIONS = 100;

/** The loss the law predicts at D tokens. */
export function lossAt(fit: Pick<EfficiencyFit, 'A' | 'alpha' | 'E'>, tokens: number): number {
  return fit.A / tokens ** fit.alpha + fit.E;
}

/**
 * With alpha fixed, L = A x + E is linear in x = D^-alpha: least squares for A and E, both kept >= 0 (the
 * constrained optimum lies on a boundary when the free one is negative). Returns the squared error too.
 */
function linearFit(points: readonly BaselinePoint[], alpha: number): { A: number; E: number; sse: number } {
  const xs = points.map((point) => point.tokens ** -alpha);
  const ys = points.map((point) => point.loss);
  const n = xs.length;
  const meanX = xs.reduce((sum, x) => sum + x, 0) / n;
  const meanY = ys.reduce((sum, y) => sum + y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i += 1) {
    sxx += (xs[i]! - meanX) ** 2;
    sxy += (xs[i]! - meanX) * (ys[i]! - meanY);
  }
  let A = sxx > 0 ? sxy / sxx : 0;
  let E = meanY - A * meanX;
  if (A < 0) {
    A = 0;
    E = meanY;
  }
  if (E < 0) {
    E = 0;
    const xx = xs.reduce((sum, x) => sum + x * x, 0);
    A = xx > 0 ? Math.max(0, xs.reduce((sum, x, i) => sum + x * ys[i]!, 0) / xx) : 0;
  }
  const sse = xs.reduce((sum, x, i) => sum + (A * x + E - ys[i]!) ** 2, 0);
  return { A, E, sse };
}

/** Checks the points: enough of them, positive tokens, finite losses, more than one token count. */
function checkPoints(points: readonly BaselinePoint[]): void {
  for (const point of points) {
    if (!Number.isFinite(point.tokens) || point.tokens <= 0) {
      throw new MegadocsError('BAD_INPUT', `tokens must be a positive number, got ${point.tokens}`, {
        where: point.where,
        hint: 'Each row gives the unique real tokens D (> 0) a baseline run trained on, and its loss',
      });
    }
    if (!Number.isFinite(point.loss) || point.loss < 0) {
      throw new MegadocsError('BAD_INPUT', `loss must be a number >= 0, got ${point.loss}`, {
        where: point.where,
        hint: 'Each row gives the unique real tokens D and the loss (>= 0) the run reached',
      });
    }
  }
  const distinct = new Set(points.map((point) => point.tokens)).size;
  if (points.length < MIN_POINTS || distinct < MIN_POINTS) {
    throw new MegadocsError(
      'BAD_INPUT',
      `the fit of A, alpha and E needs at least ${MIN_POINTS} points at different token counts, got ${points.length} (${distinct} different)`,
      { hint: 'Add baseline runs trained on other amounts of unique real data' },
    );
  }
}

/**
 * Fits L(D) = A / D^alpha + E: for each alpha of a grid the best A, E >= 0 in closed form (a profile of the
 * squared error), then a golden-section search between the best grid point's neighbours.
 */
export function fitEfficiency(points: readonly BaselinePoint[]): EfficiencyFit {
  checkPoints(points);
  const { from, to, steps } = ALPHA_GRID;
  const alphaOf = (step: number) => from * (to / from) ** (step / steps);
  let best = 0;
  let bestSse = Number.POSITIVE_INFINITY;
  for (let step = 0; step <= steps; step += 1) {
    const { sse } = linearFit(points, alphaOf(step));
    if (sse < bestSse) {
      bestSse = sse;
      best = step;
    }
  }
  let low = alphaOf(Math.max(0, best - 1));
  let high = alphaOf(Math.min(steps, best + 1));
  const ratio = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < REFINE_ITERATIONS && high - low > 1e-12; i += 1) {
    const left = high - ratio * (high - low);
    const right = low + ratio * (high - low);
    if (linearFit(points, left).sse <= linearFit(points, right).sse) high = right;
    else low = left;
  }
  const alpha = (low + high) / 2;
  const { A, E, sse } = linearFit(points, alpha);
  const meanLoss = points.reduce((sum, point) => sum + point.loss, 0) / points.length;
  const total = points.reduce((sum, point) => sum + (point.loss - meanLoss) ** 2, 0);
  return {
    A,
    alpha,
    E,
    rmse: Math.sqrt(sse / points.length),
    r2: total > 0 ? 1 - sse / total : 1,
    points: points.map((point) => {
      const fitted = lossAt({ A, alpha, E }, point.tokens);
      return { ...point, fitted, residual: point.loss - fitted };
    }),
  };
}

export type EffectiveData =
  | { defined: true; effectiveTokens: number; efficiency: number; tokens: number; loss: number }
  | { defined: false; reason: string; tokens: number; loss: number };

/**
 * The real tokens the baseline would need to reach `loss` (D_eff), and the efficiency D_eff / D0 of a method
 * that reached it on `tokens` (D0) real tokens. Undefined when the loss is at or below E (or the law is flat).
 */
export function effectiveData(
  fit: Pick<EfficiencyFit, 'A' | 'alpha' | 'E'>,
  tokens: number,
  loss: number,
): EffectiveData {
  if (!Number.isFinite(tokens) || tokens <= 0) {
    throw new MegadocsError('BAD_OPTION', `expected a positive number of tokens, got ${tokens}`, {
      where: '--tokens',
      hint: 'Give D0, the unique real tokens the method trained on',
    });
  }
  if (!Number.isFinite(loss)) {
    throw new MegadocsError('BAD_OPTION', `expected a number, got ${loss}`, {
      where: '--loss',
      hint: 'Give the loss the method reached',
    });
  }
  if (loss <= fit.E) {
    return {
      defined: false,
      tokens,
      loss,
      reason: `the loss ${loss} is at or below E = ${fit.E.toPrecision(6)}, the baseline's loss with unlimited data: no amount of real data reaches it`,
    };
  }
  if (fit.A === 0 || fit.alpha === 0) {
    return {
      defined: false,
      tokens,
      loss,
      reason: 'the fitted law is flat (A or alpha is 0): it cannot be inverted',
    };
  }
  const effectiveTokens = (fit.A / (loss - fit.E)) ** (1 / fit.alpha);
  return { defined: true, tokens, loss, effectiveTokens, efficiency: effectiveTokens / tokens };
}
