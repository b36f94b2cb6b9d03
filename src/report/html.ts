/**
 * One self-contained HTML page for a set of runs: plotly.js is inlined from node_modules (no CDN, no
 * network: the page opens offline and in a sandboxed headless browser), the figure specs are a JSON
 * block (`<script type="application/json" id="clinilora-report">`) the page plots on load, and the
 * tables (runs, final metrics, config diff) are plain HTML.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { cliniloraHome } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { formatNumber, showValue } from '../tracker/compare.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { reportData, type ReportData } from './data.ts';
import { reportFigures, type Figure } from './figures.ts';

export const PLOTLY_PACKAGE = 'plotly.js-dist-min';

let plotlyCache: { file: string; version: string; source: string } | undefined;

/** The minified plotly.js bundle from node_modules, read once. */
export function plotlyBundle(): { file: string; version: string; source: string } {
  if (plotlyCache !== undefined) return plotlyCache;
  const require = createRequire(import.meta.url);
  let file: string;
  try {
    file = require.resolve(PLOTLY_PACKAGE);
  } catch {
    throw new CliniloraError('E_MISSING', `${PLOTLY_PACKAGE} is not installed`, { hint: `npm install ${PLOTLY_PACKAGE} (the report inlines its bundle)` });
  }
  const pkg = JSON.parse(readFileSync(join(dirname(file), 'package.json'), 'utf8')) as { version: string };
  plotlyCache = { file, version: pkg.version, source: readFileSync(file, 'utf8') };
  return plotlyCache;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON that cannot end its <script> element early. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

function table(head: string[], rows: string[][], cls: string): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeHtml(c)}</th>` : `<td>${escapeHtml(c)}</td>`)).join('')}</tr>`).join('\n');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

export interface RenderOptions {
  title?: string;
  /** Generation time shown in the page (default now). */
  generated?: string;
}

/** The page as a string (figures from `reportFigures(data)` unless given). */
export function renderReportHtml(data: ReportData, figures: Figure[] = reportFigures(data), opts: RenderOptions = {}): string {
  const plotly = plotlyBundle();
  const title = opts.title ?? `clinilora report: ${data.runs.map((r) => r.id).join(', ')}`;
  const runIds = data.runs.map((r) => r.id);
  const runsTable = table(['id', 'name', 'task', 'kind', 'status', 'started'], data.runs.map((r) => [r.id, r.name, r.task, r.kind, r.status, r.started]), 'runs');
  const metricsTable =
    data.metrics.names.length === 0
      ? '<p>No final metrics recorded.</p>'
      : table(['metric', ...data.runs.map((r) => r.label)], data.metrics.names.map((n, i) => [n, ...data.metrics.values[i]!.map(formatNumber)]), 'metrics');
  const diffTable =
    data.runs.length < 2
      ? '<p>One run: nothing to compare.</p>'
      : data.configDiff.length === 0
        ? '<p>The configs are identical.</p>'
        : table(['config key', ...data.runs.map((r) => r.label)], data.configDiff.map((d) => [d.key, ...d.values.map((v) => showValue(v, 120))]), 'config-diff');
  const figDivs = figures.map((f) => `<section class="figure"><div id="${escapeHtml(f.id)}" class="plot"></div></section>`).join('\n');
  const notes = data.notes.length === 0 ? '' : `<h2>Notes</h2><ul>${data.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`;
  const payload = { runs: runIds, figures, metrics: data.metrics, configDiff: data.configDiff };
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="clinilora; plotly.js ${escapeHtml(plotly.version)} inline">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
td { font-variant-numeric: tabular-nums; }
thead th { background: #f3f3f3; }
.plot { width: 100%; }
.meta { color: #666; font-size: 0.85rem; }
</style>
<script>
${plotly.source.replace(/<\/script/gi, '<\\/script')}
</script>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Generated ${escapeHtml(opts.generated ?? new Date().toISOString())} by clinilora; plots by plotly.js ${escapeHtml(plotly.version)} (inlined).</p>
<h2>Runs</h2>
${runsTable}
<h2>Curves and evaluation plots</h2>
${figures.length === 0 ? '<p>No steps or evaluation reports recorded.</p>' : figDivs}
<h2>Final metrics</h2>
${metricsTable}
<h2>Config differences</h2>
${diffTable}
${notes}
<script type="application/json" id="clinilora-report">${scriptJson(payload)}</script>
<script>
(function () {
  var report = JSON.parse(document.getElementById('clinilora-report').textContent);
  window.cliniloraPlots = Promise.all(report.figures.map(function (f) {
    return Plotly.newPlot(f.id, f.data, f.layout, { displaylogo: false, responsive: true });
  }));
})();
</script>
</body>
</html>
`;
}

export interface WriteReportOptions {
  root?: string;
  /** Output file (default `<home>/experiments/reports/report-<first id>[+N].html`). */
  out?: string;
  now?: number;
}

export interface WrittenReport {
  file: string;
  bytes: number;
  figures: Figure[];
  data: ReportData;
  html: string;
}

/** Reads the runs, renders the page and writes it atomically. */
export function writeReport(refs: readonly string[], opts: WriteReportOptions = {}): WrittenReport {
  if (refs.length === 0) throw new CliniloraError('E_ARG', 'a report needs at least one run id', { field: 'id' });
  const data = reportData(refs, { ...(opts.root !== undefined ? { root: opts.root } : {}), ...(opts.now !== undefined ? { now: opts.now } : {}) });
  const figures = reportFigures(data);
  const html = renderReportHtml(data, figures);
  const home = opts.root !== undefined ? resolve(opts.root) : cliniloraHome();
  const first = data.runs[0]!.id;
  const file = resolve(opts.out ?? join(home, 'experiments', 'reports', `report-${first}${data.runs.length > 1 ? `+${data.runs.length - 1}` : ''}.html`));
  writeFileAtomic(file, html);
  return { file, bytes: Buffer.byteLength(html), figures, data, html };
}
