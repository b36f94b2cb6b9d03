/**
 * Plotly figures in notebook outputs, with plotly.js inlined from node_modules (no CDN: the saved
 * notebook plots offline). The bundle is ~4.6 MB, so by default only the first figure of a kernel
 * session carries it (`bundle: 'once'`) and later figures wait for `window.Plotly`; outputs render in
 * order when a saved notebook is opened, so the first figure loads it for the rest. `bundle: 'inline'`
 * puts it in every figure (a figure that must stand alone). Each output also has a text summary and
 * an HTML fallback line the script removes, readable where scripts do not run.
 */
import { plotlyBundle } from '../report/html.ts';
import { escapeHtml, Rendered } from './display.ts';

export interface PlotlyTrace {
  type?: string;
  name?: string;
  x?: readonly unknown[];
  y?: readonly unknown[];
  z?: readonly unknown[];
  [key: string]: unknown;
}

export interface PlotlyFigure {
  data: readonly PlotlyTrace[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

export interface PlotOptions {
  /** 'once' (default): the first figure of the session carries plotly.js; 'inline': every figure. */
  bundle?: 'once' | 'inline';
  /** Height in px (default the layout's, else 420). */
  height?: number;
}

let bundleSent = false;
let figureCount = 0;

// The bundle sets window.Plotly itself; a page's `module`/`define` (RequireJS in classic Notebook)
// are shadowed so it does not register as a module instead.
/** JSON that cannot end its <script> element early. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

function titleOf(fig: PlotlyFigure): string | null {
  const t = fig.layout?.title;
  if (typeof t === 'string') return t;
  if (t !== null && typeof t === 'object' && typeof (t as { text?: unknown }).text === 'string') return (t as { text: string }).text;
  return null;
}

/** A few lines a reader without JavaScript gets: the title and each trace's name, type and size. */
export function figureSummary(fig: PlotlyFigure): string {
  const lines = [`Figure${titleOf(fig) !== null ? `: ${titleOf(fig)}` : ''} (${fig.data.length} trace${fig.data.length === 1 ? '' : 's'})`];
  for (const t of fig.data) {
    const n = (t.y ?? t.x ?? t.z ?? []).length;
    const ys = (t.y ?? []).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const range = ys.length > 0 ? `, y ${Number(Math.min(...ys).toPrecision(4))}…${Number(Math.max(...ys).toPrecision(4))}` : '';
    lines.push(`  - ${t.name ?? '(unnamed)'} [${t.type ?? 'scatter'}] ${n} points${range}`);
  }
  return lines.join('\n');
}

export class PlotlyOutput extends Rendered {
  constructor(
    readonly figure: PlotlyFigure,
    bundle: { 'text/html': string; 'text/plain': string },
    /** Whether this output carries plotly.js itself. */
    readonly inlined: boolean,
  ) {
    super(bundle);
  }
}

/** A plotly figure as a notebook output. */
export function plot(fig: PlotlyFigure, opts: PlotOptions = {}): PlotlyOutput {
  const mode = opts.bundle ?? 'once';
  const inline = mode === 'inline' || !bundleSent;
  if (inline) bundleSent = true;
  const id = `clinilora-plot-${process.pid}-${++figureCount}`;
  const layoutHeight = typeof fig.layout?.height === 'number' ? fig.layout.height : undefined;
  const height = opts.height ?? layoutHeight ?? 420;
  const summary = figureSummary(fig);
  const spec = { data: fig.data, layout: { height, ...(fig.layout ?? {}) }, config: { responsive: true, displaylogo: false, ...(fig.config ?? {}) } };
  const loader = inline ? `<script type="text/javascript">/* plotly.js ${plotlyBundle().version}, inlined */\nif (!window.Plotly) (function (module, exports, define) {\n${plotlyBundle().source}\n}).call(window);</script>\n` : '';
  const render = `<script type="text/javascript">(function () {
  var el = document.getElementById(${JSON.stringify(id)}), spec = ${scriptJson(spec)}, tries = 0;
  function draw() {
    if (window.Plotly) { var fb = el.querySelector('.clinilora-fallback'); if (fb) fb.remove(); window.Plotly.newPlot(el, spec.data, spec.layout, spec.config); }
    else if (++tries < 400) setTimeout(draw, 50);
    else el.querySelector('.clinilora-fallback').textContent = 'plotly.js is not loaded: run the first plotting cell of this notebook again.';
  }
  draw();
})();</script>`;
  const div = `<div id="${id}" class="clinilora-plot" style="min-height:${height}px"><pre class="clinilora-fallback">${escapeHtml(summary)}</pre></div>`;
  return new PlotlyOutput(fig, { 'text/html': `${loader}${div}\n${render}`, 'text/plain': summary }, inline);
}

/** Forgets that the bundle was sent (the next figure inlines it again), e.g. after clearing outputs. */
export function resetPlotlyBundle(): void {
  bundleSent = false;
}
