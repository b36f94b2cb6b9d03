/**
 * Notebook display helpers without a kernel: tables, plotly outputs (bundle inlined once, no CDN),
 * the LoRA diagram's numbers, the live loss curve's display updates, the SVG chart, run origins.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { setCurrentSink, type CellSink, type DisplayMessage } from '../src/notebook/display-channel.ts';
import { display, html } from '../src/notebook/display.ts';
import { loraDiagram } from '../src/notebook/lora-diagram.ts';
import { LossCurve } from '../src/notebook/loss-curve.ts';
import { NOTEBOOK_ENV, notebookOrigin, setCurrentCell } from '../src/notebook/origin.ts';
import { plot, resetPlotlyBundle } from '../src/notebook/plotly.ts';
import { lineChartSvg, ticks } from '../src/notebook/svg-chart.ts';
import { formatCell, metricsTable, table } from '../src/notebook/table.ts';

/** A sink that records what a kernel would send. */
function recorder(): CellSink & { shown: { msg: DisplayMessage; update: boolean }[] } {
  const shown: { msg: DisplayMessage; update: boolean }[] = [];
  return { shown, stream: () => {}, display: (msg, update) => void shown.push({ msg, update }) };
}

afterEach(() => {
  setCurrentSink(null);
  setCurrentCell(null);
});

test('table: records, column mappings and frames; aligned text, escaped HTML, row limit', () => {
  const t = table([{ name: '<b>x</b>', n: 3, p: 0.123456 }, { name: 'y', n: 12, p: null }], { caption: 'T' });
  assert.deepEqual(t.columns, ['name', 'n', 'p']);
  assert.deepEqual(t.rows, [['<b>x</b>', '3', '0.1235'], ['y', '12', '']]);
  const html = t.bundle['text/html'] as string;
  assert.match(html, /&lt;b&gt;x&lt;\/b&gt;/);
  assert.doesNotMatch(html, /<b>x<\/b>/);
  assert.match(html, /<caption>T<\/caption>/);
  const lines = t.text.split('\n');
  assert.equal(lines[0], 'T');
  // Numbers are right-aligned under their header.
  assert.equal(lines[3]!.indexOf('3') + 1, lines[4]!.indexOf('12') + 2);

  const fromColumns = table({ a: [1, 2, 3], b: ['u', 'v', 'w'] }, { maxRows: 2 });
  assert.deepEqual(fromColumns.rows, [['1', 'u'], ['2', 'v'], ['3', 'w']]);
  assert.match(fromColumns.text, /… 1 more rows/);
  assert.match(fromColumns.bundle['text/html'] as string, /1 more rows/);

  const frame = { columns: ['x', 'y'], values: [[1, 'a'], [2, 'b']] };
  assert.deepEqual(table(frame, { columns: ['y'] }).rows, [['a'], ['b']]);
});

test('formatCell: integers whole (with separators when large), others to significant digits', () => {
  assert.equal(formatCell(9437184), '9,437,184');
  assert.equal(formatCell(1234), '1234');
  assert.equal(formatCell(2 / 3, 3), '0.667');
  assert.equal(formatCell(1.5e-7), '1.500e-7');
  assert.equal(formatCell(NaN), 'NaN');
  assert.equal(formatCell(-Infinity), '-∞');
  assert.equal(formatCell(undefined), '');
});

test('metricsTable: one row per metric, one column per model', () => {
  const t = metricsTable({ adapter: { accuracy: 0.9, f1: 0.8 }, base: { accuracy: 0.4 } });
  assert.deepEqual(t.columns, ['metric', 'adapter', 'base']);
  assert.deepEqual(t.rows, [['accuracy', '0.9', '0.4'], ['f1', '0.8', '']]);
  assert.deepEqual(metricsTable({ loss: 1.25 }).rows, [['loss', '1.25']]);
});

test('plot: plotly.js inlined in the first figure only (no CDN), a text summary always', () => {
  resetPlotlyBundle();
  const fig = { data: [{ type: 'scatter', name: 'loss', x: [1, 2, 3], y: [3, 2, 1] }], layout: { title: { text: 'Loss' } } };
  const first = plot(fig);
  const second = plot(fig);
  const forced = plot(fig, { bundle: 'inline' });
  assert.equal(first.inlined, true);
  assert.equal(second.inlined, false);
  assert.equal(forced.inlined, true);
  const h1 = first.bundle['text/html'] as string;
  const h2 = second.bundle['text/html'] as string;
  assert.ok(h1.length > 1_000_000, 'the bundle itself is in the first output');
  assert.ok(h2.length < 10_000, 'later outputs only plot');
  assert.match(h2, /window\.Plotly/);
  for (const h of [h1, h2]) assert.doesNotMatch(h, /<script[^>]+src=/, 'no external script');
  assert.match(first.text, /Figure: Loss \(1 trace\)/);
  assert.match(first.text, /loss \[scatter\] 3 points, y 1…3/);
  // The fallback a reader sees without scripts is the same summary.
  assert.match(h2, /class="clinilora-fallback">Figure: Loss/);
  resetPlotlyBundle();
  assert.equal(plot(fig).inlined, true);
});

test('loraDiagram: W frozen, A and B trained, Phi-3-mini counts', () => {
  // Phi-3-mini qkv_proj [9216, 3072] and o_proj [3072, 3072] at r = 16: 196,608 + 98,304 = 294,912 a layer.
  const qkv = loraDiagram({ inFeatures: 3072, outFeatures: 9216, r: 16, alpha: 32, name: 'qkv_proj' });
  const o = loraDiagram({ inFeatures: 3072, outFeatures: 3072, r: 16, alpha: 32 });
  assert.equal(qkv.facts.trainable + o.facts.trainable, 294_912);
  assert.equal(qkv.facts.frozen, 9216 * 3072);
  assert.equal(qkv.facts.scaling, 2);
  assert.equal(loraDiagram({ inFeatures: 4, outFeatures: 4, r: 4, alpha: 8, rslora: true }).facts.scaling, 4);
  const svg = qkv.bundle['image/svg+xml'] as string;
  assert.match(svg, /^<svg[\s\S]*<\/svg>$/);
  assert.match(svg, /frozen/);
  assert.match(svg, /A {2}\[16, 3072\]/);
  assert.match(svg, /B {2}\[9216, 16\]/);
  assert.match(qkv.text, /W \[9216, 3072\] {2}frozen/);
  assert.match(qkv.text, /init 0/);
  assert.throws(() => loraDiagram({ inFeatures: 4, outFeatures: 4, r: 0, alpha: 1 }), /r must be a positive integer/);
});

test('LossCurve: shown once, then updated in place (same display_id), throttled, final state on finish', () => {
  const sink = recorder();
  setCurrentSink(sink);
  const live = new LossCurve({ minIntervalMs: 0 }).show();
  for (let s = 1; s <= 3; s++) live.add(s, 1 / s);
  live.add(3, 0.9, 'validation');
  live.finish();
  assert.equal(sink.shown[0]!.update, false);
  const id = sink.shown[0]!.msg.transient?.display_id;
  assert.ok(id !== undefined && id !== '');
  assert.equal(sink.shown.length, 1 + 4, 'one update per point at minIntervalMs 0 (finish has nothing pending)');
  for (const s of sink.shown.slice(1)) {
    assert.equal(s.update, true);
    assert.equal(s.msg.transient?.display_id, id);
  }
  const last = sink.shown.at(-1)!.msg.data;
  assert.match(last['text/plain'] as string, /train: step 3 loss 0\.3333 \(best 0\.3333 at step 3; 3 points\)/);
  assert.match(last['text/plain'] as string, /validation: step 3 loss 0\.9/);
  assert.match(last['image/svg+xml'] as string, /<path d="M/);

  const slow = recorder();
  setCurrentSink(slow);
  const throttled = new LossCurve({ minIntervalMs: 60_000 }).show();
  for (let s = 1; s <= 50; s++) throttled.add(s, 10 - s / 10);
  assert.equal(slow.shown.length, 1, 'no redraw inside the interval');
  throttled.finish();
  assert.equal(slow.shown.length, 2);
  assert.match(slow.shown[1]!.msg.data['text/plain'] as string, /step 50 loss 5 /);
  assert.equal(throttled.updates, 1);

  // The trainer callbacks feed the same curve.
  const cb = new LossCurve({ minIntervalMs: 0 }).callbacks();
  cb.onStart();
  cb.onStepEnd({ step: 1, loss: 2, lr: 1e-3, gradNorm: 1, tokensPerSec: 1, tokens: 1, elapsedMs: 1, stepMs: 1, epoch: 0, totalSteps: 1 });
  assert.match(slow.shown.at(-1)!.msg.data['text/plain'] as string, /train: step 1 loss 2 /);
});

test('display: outside a notebook it prints the text; a handle updates only inside one', () => {
  const writes: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => { writes.push(s); return true; }) as typeof process.stdout.write;
  try {
    const h = display(html('<p>hi</p>'));
    h.update(html('<p>again</p>'));
  } finally {
    process.stdout.write = write;
  }
  assert.deepEqual(writes, ['hi\n']);
});

test('lineChartSvg and ticks: nice ticks, gaps at non-finite points', () => {
  assert.deepEqual(ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(ticks(0, 100, 4), [0, 25, 50, 75, 100]);
  const svg = lineChartSvg([{ name: 'a', x: [1, 2, 3, 4], y: [1, NaN, 3, 4] }], { title: 'T' });
  const d = /<path d="([^"]+)"/.exec(svg)![1]!;
  assert.equal((d.match(/M/g) ?? []).length, 2, 'the NaN splits the line');
  assert.doesNotMatch(svg, /NaN/);
});

test('notebookOrigin: the running cell, else the environment, else null', () => {
  assert.equal(notebookOrigin({}), null);
  assert.deepEqual(notebookOrigin({ [NOTEBOOK_ENV.notebook]: '/n/a.ipynb', [NOTEBOOK_ENV.cell]: '4', [NOTEBOOK_ENV.run]: 'r1' }), {
    kind: 'notebook',
    notebook: '/n/a.ipynb',
    cell: 4,
    cellId: null,
    executionCount: null,
    run: 'r1',
  });
  assert.equal(notebookOrigin({ JPY_SESSION_NAME: '/lab/b.ipynb' })?.notebook, '/lab/b.ipynb');
  setCurrentCell({ notebook: '/n/c.ipynb', cellIndex: 7, cellId: 'abc', executionCount: 3 });
  const o = notebookOrigin({ [NOTEBOOK_ENV.notebook]: '/n/a.ipynb', [NOTEBOOK_ENV.cell]: '4' });
  assert.equal(o?.notebook, '/n/c.ipynb');
  assert.equal(o?.cell, 7);
  assert.equal(o?.cellId, 'abc');
});
