// Histograms drawn as inline SVG: one bar per bin, the count axis from 0, the first, middle and last edges
// labelled; each bar has a <title> (bin range and count) for the browser's tooltip. No script, no library.
import { escapeHtml } from './escape.js';
import type { Bins } from './histogram.js';

const WIDTH = 420;
const HEIGHT = 170;
const LEFT = 44;
const BOTTOM = 28;
const TOP = 8;

/** A short label for an axis value: 1234 -> 1.2k, 0.125 -> 0.13. */
export function shortNumber(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 1e9) return `${(value / 1e9).toFixed(1)}G`;
  if (magnitude >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (magnitude >= 1e4) return `${Math.round(value / 1e3)}k`;
  if (magnitude >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  if (magnitude >= 10 || Number.isInteger(value)) return String(Math.round(value));
  return value.toFixed(2);
}

/** The histogram as an <svg> element; `unit` follows the values in labels (e.g. "tokens", "ms"). */
export function histogramSvg(title: string, bins: Bins, unit: string): string {
  const label = escapeHtml(title);
  if (bins.total === 0) {
    return `<svg class="histogram" role="img" aria-label="${label}" viewBox="0 0 ${WIDTH} 40" width="${WIDTH}" height="40"><text x="8" y="24" class="empty">no values</text></svg>`;
  }
  const plotWidth = WIDTH - LEFT - 8;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const peak = Math.max(...bins.counts);
  const barWidth = plotWidth / bins.counts.length;
  const bars = bins.counts.map((count, index) => {
    const height = peak > 0 ? (count / peak) * plotHeight : 0;
    const x = LEFT + index * barWidth;
    const range = `${shortNumber(bins.edges[index]!)}-${shortNumber(bins.edges[index + 1]!)} ${unit}`;
    return `<rect x="${x.toFixed(1)}" y="${(TOP + plotHeight - height).toFixed(1)}" width="${Math.max(1, barWidth - 1).toFixed(1)}" height="${height.toFixed(1)}"><title>${escapeHtml(`${range}: ${count}`)}</title></rect>`;
  });
  const middle = Math.floor(bins.counts.length / 2);
  const ticks = [0, middle, bins.counts.length].map((at) => {
    const x = LEFT + at * barWidth;
    const anchor = at === 0 ? 'start' : at === bins.counts.length ? 'end' : 'middle';
    return `<text x="${x.toFixed(1)}" y="${HEIGHT - 12}" text-anchor="${anchor}">${escapeHtml(shortNumber(bins.edges[at]!))}</text>`;
  });
  const axis = `${unit}${bins.log ? ' (log scale)' : ''}`;
  return [
    `<svg class="histogram" role="img" aria-label="${label}" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}">`,
    `<line x1="${LEFT}" y1="${TOP + plotHeight}" x2="${WIDTH - 8}" y2="${TOP + plotHeight}" class="axis"/>`,
    `<text x="${LEFT - 4}" y="${TOP + 10}" text-anchor="end">${escapeHtml(shortNumber(peak))}</text>`,
    `<text x="${LEFT - 4}" y="${TOP + plotHeight}" text-anchor="end">0</text>`,
    ...bars,
    ...ticks,
    `<text x="${WIDTH - 8}" y="${HEIGHT - 1}" text-anchor="end" class="unit">${escapeHtml(axis)}</text>`,
    '</svg>',
  ].join('');
}
