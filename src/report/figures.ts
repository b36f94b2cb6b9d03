/**
 * Plotly figure specs (plain JSON: data traces + layout) for a report. Each trace carries
 * `meta: {run, series}` so a reader (or a test) can find which run and series it shows.
 */
import type { ReportData, Series } from './data.ts';

export interface Trace {
  type: 'scatter' | 'heatmap';
  name?: string;
  meta?: { run: string; series: string };
  [key: string]: unknown;
}

export interface Figure {
  /** Element id and PNG file name. */
  id: string;
  title: string;
  data: Trace[];
  layout: Record<string, unknown>;
}

const base = (title: string, x: string, y: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  title: { text: title },
  xaxis: { title: { text: x } },
  yaxis: { title: { text: y } },
  margin: { t: 50, r: 20, b: 60, l: 70 },
  legend: { orientation: 'h', y: -0.2 },
  height: 420,
  ...extra,
});

const lines = (s: Series, series: string, extra: Record<string, unknown> = {}): Trace => ({
  type: 'scatter',
  mode: s.x.length === 1 ? 'markers' : 'lines',
  name: s.label,
  x: s.x,
  y: s.y,
  meta: { run: s.run, series },
  ...extra,
});

/** A safe element id from free text. */
const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

export function reportFigures(d: ReportData): Figure[] {
  const figs: Figure[] = [];
  if (d.loss.length + d.valLoss.length > 0) {
    figs.push({
      id: 'loss',
      title: 'Training loss',
      data: [
        ...d.loss.map((s) => lines(s, 'loss')),
        ...d.valLoss.map((s) => lines({ ...s, label: `${s.label} validation` }, 'val_loss', { mode: 'lines+markers', line: { dash: 'dash' } })),
      ],
      layout: base('Loss per step (validation dashed)', 'step', 'loss (nats/token)'),
    });
  }
  if (d.lr.length > 0) {
    figs.push({ id: 'lr', title: 'Learning rate', data: d.lr.map((s) => lines(s, 'lr')), layout: base('Learning-rate schedule', 'step', 'learning rate', { yaxis: { title: { text: 'learning rate' }, exponentformat: 'e' } }) });
  }
  d.confusion.forEach((c, i) => {
    // Rows true class, columns predicted; reversed y so the first label is at the top like a table.
    figs.push({
      id: `confusion-${i + 1}-${slug(c.title)}`,
      title: `Confusion matrix: ${c.title}`,
      data: [{ type: 'heatmap', z: c.matrix, x: c.columns, y: c.labels, colorscale: 'Blues', texttemplate: '%{z}', hovertemplate: 'true %{y}<br>predicted %{x}<br>%{z}<extra></extra>', meta: { run: c.run, series: 'confusion' } }],
      layout: base(`Confusion matrix: ${c.title}`, 'predicted', 'true', { yaxis: { title: { text: 'true' }, autorange: 'reversed' }, height: 120 + 40 * c.labels.length, margin: { t: 50, r: 20, b: 120, l: 160 } }),
    });
  });
  if (d.reliability.length > 0) {
    figs.push({
      id: 'reliability',
      title: 'Reliability',
      data: [
        { type: 'scatter', mode: 'lines', name: 'perfect calibration', x: [0, 1], y: [0, 1], line: { dash: 'dot', color: 'gray' } },
        ...d.reliability.map(
          (r): Trace => ({
            type: 'scatter',
            mode: 'lines+markers',
            name: r.label,
            x: r.meanPredicted,
            y: r.observedRate,
            text: r.count.map((n) => `n=${n}`),
            hovertemplate: 'predicted %{x:.3f}<br>observed %{y:.3f}<br>%{text}<extra></extra>',
            meta: { run: r.run, series: 'reliability' },
          }),
        ),
      ],
      layout: base('Reliability curve (heart-risk)', 'mean predicted probability', 'observed death rate', { xaxis: { title: { text: 'mean predicted probability' }, range: [0, 1] }, yaxis: { title: { text: 'observed death rate' }, range: [0, 1] } }),
    });
  }
  return figs;
}
