/**
 * A small static SVG line chart (no scripts: renders in any notebook viewer, GitHub included) for
 * curves that must stay readable in a saved notebook, such as the live loss curve.
 */
import { escapeHtml } from './display.ts';

export interface LineSeries {
  name: string;
  x: readonly number[];
  y: readonly number[];
}

export interface LineChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

/** "Nice" tick values covering [lo, hi] (about `n` of them). */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v: number): string => String(Number(v.toPrecision(4)));

/** The chart as an SVG string. Non-finite points are skipped (a gap, not a crash). */
export function lineChartSvg(series: readonly LineSeries[], opts: LineChartOptions = {}): string {
  const W = opts.width ?? 560;
  const H = opts.height ?? 300;
  const m = { l: 58, r: 16, t: opts.title !== undefined ? 30 : 12, b: 44 };
  const pts = series.flatMap((s) => s.x.map((x, i) => [x, s.y[i]!] as const)).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  let [x0, x1] = xs.length > 0 ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length > 0 ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const px = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  if (opts.title !== undefined) parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${escapeHtml(opts.title)}</text>`);
  for (const t of ticks(y0, y1)) {
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(x0, x1)) {
    const x = px(t).toFixed(1);
    parts.push(`<text x="${x}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
  if (opts.xLabel !== undefined) parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle">${escapeHtml(opts.xLabel)}</text>`);
  if (opts.yLabel !== undefined) parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(opts.yLabel)}</text>`);
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length]!;
    // A path broken at non-finite values.
    let d = '';
    let pen = false;
    s.x.forEach((x, i) => {
      const y = s.y[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${px(x).toFixed(1)} ${py(y).toFixed(1)}`;
      pen = true;
    });
    if (s.x.length === 1 && d !== '') parts.push(`<circle cx="${px(s.x[0]!).toFixed(1)}" cy="${py(s.y[0]!).toFixed(1)}" r="3" fill="${color}"/>`);
    else parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    parts.push(`<text x="${W - m.r - 4}" y="${m.t + 14 + 14 * k}" text-anchor="end" fill="${color}">${escapeHtml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
