/** `clinilora report` as a library: one self-contained HTML page from synthetic run records. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';
import { CliniloraError } from '../src/errors.ts';
import { exportPngs, findChromium } from '../src/report/png.ts';
import { writeReport } from '../src/report/html.ts';
import type { Figure } from '../src/report/figures.ts';
import { makeRuns } from './report-fixtures.ts';

process.env.NODE_ENV = 'test';
const fx = await makeRuns();
const outDir = mkdtempSync(join(tmpdir(), 'clinilora-report-'));
const plotlySource = readFileSync(createRequire(import.meta.url).resolve('plotly.js-dist-min'), 'utf8');

interface Payload {
  runs: string[];
  figures: Figure[];
  configDiff: { key: string; values: unknown[] }[];
  metrics: { names: string[]; values: (number | null)[][] };
}

function payloadOf(html: string): Payload {
  const m = /<script type="application\/json" id="clinilora-report">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m !== null, 'the figure data block is present');
  return JSON.parse(m[1]!) as Payload;
}

/** Row headers of one HTML table (by class). */
function rowKeys(html: string, cls: string): string[] {
  const t = new RegExp(`<table class="${cls}">([\\s\\S]*?)</table>`).exec(html);
  assert.ok(t !== null, `table ${cls}`);
  return [...t[1]!.matchAll(/<th scope="row">([^<]*)<\/th>/g)].map((m) => m[1]!);
}

const traces = (p: Payload, fig: string, series: string): Figure['data'] => p.figures.find((f) => f.id === fig)!.data.filter((t) => t.meta?.series === series);

test('two runs: plotly inline (no network), loss and lr traces equal the records, config diff lists exactly the differing keys', () => {
  const out = join(outDir, 'ab.html');
  const r = writeReport([fx.a.id, fx.b.id], { root: fx.home, out });
  assert.equal(r.file, out);
  const html = readFileSync(out, 'utf8');
  assert.equal(r.bytes, Buffer.byteLength(html));
  assert.ok(html.includes(plotlySource), 'the plotly.js bundle is inlined verbatim');
  assert.doesNotMatch(html, /<script[^>]*\ssrc=/i, 'no external scripts');
  assert.doesNotMatch(html, /<link[^>]*href="https?:/i, 'no external styles');
  assert.deepEqual(readdirSync(outDir).filter((f) => f.includes('.tmp-')), [], 'written atomically: no temp file left');

  const p = payloadOf(html);
  assert.deepEqual(p.runs, [fx.a.id, fx.b.id]);
  const loss = traces(p, 'loss', 'loss');
  assert.deepEqual(loss.map((t) => t.meta!.run), [fx.a.id, fx.b.id]);
  assert.deepEqual(loss[0]!.y, fx.losses.a, 'a NaN loss is a gap (null)');
  assert.deepEqual(loss[1]!.y, fx.losses.b);
  assert.deepEqual(loss[0]!.x, [1, 2, 3, 4, 5]);
  assert.deepEqual(traces(p, 'loss', 'val_loss').map((t) => [t.x, t.y]), [[[5], [1.5]], [[5], [1.5]]]);
  const lr = traces(p, 'lr', 'lr');
  assert.deepEqual(lr.map((t) => t.y), [fx.lrs.a, fx.lrs.b]);

  assert.deepEqual(p.configDiff, [
    { key: 'lora.r', values: [16, 8] },
    { key: 'training.lr', values: [3e-4, 1e-3] },
  ]);
  assert.deepEqual(rowKeys(html, 'config-diff'), ['lora.r', 'training.lr']);
  assert.deepEqual(rowKeys(html, 'metrics'), ['accuracy', 'final_loss', 'only_b', 'steps']);

  const conf = p.figures.filter((f) => f.data.some((t) => t.meta?.series === 'confusion'));
  assert.equal(conf.length, 2);
  assert.deepEqual(conf[0]!.data[0]!.z, [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]]);
  assert.deepEqual(conf[0]!.data[0]!.x, ['ok', 'warn', 'fail', 'unparseable']);
  assert.deepEqual(conf[1]!.data[0]!.z, [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0]]);
  assert.equal(p.figures.find((f) => f.id === 'reliability'), undefined, 'auditor runs have no reliability curve');
});

test('the page plots every figure on load (bootstrap script run against a stub Plotly)', () => {
  const html = readFileSync(join(outDir, 'ab.html'), 'utf8');
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  assert.equal(scripts.length, 2, 'plotly, then the bootstrap');
  const bootstrap = scripts[1]!;
  const json = /<script type="application\/json" id="clinilora-report">([\s\S]*?)<\/script>/.exec(html)![1]!;
  const calls: string[] = [];
  const sandbox = {
    document: { getElementById: (id: string) => (id === 'clinilora-report' ? { textContent: json } : null) },
    Plotly: { newPlot: (id: string) => (calls.push(id), Promise.resolve()) },
    window: {} as Record<string, unknown>,
    Promise,
    JSON,
  };
  vm.runInNewContext(bootstrap, sandbox);
  const ids = payloadOf(html).figures.map((f) => f.id);
  assert.deepEqual(calls, ids);
  for (const id of ids) assert.ok(html.includes(`<div id="${id}" class="plot"></div>`), `a div for ${id}`);
});

test('heart-risk: reliability curve from the eval report (empty bins left out) with the diagonal', () => {
  const r = writeReport([fx.c.id], { root: fx.home, out: join(outDir, 'c.html') });
  const p = payloadOf(r.html);
  const rel = p.figures.find((f) => f.id === 'reliability');
  assert.ok(rel !== undefined);
  const [curve] = rel.data.filter((t) => t.meta?.series === 'reliability');
  assert.deepEqual(curve!.x, [0.1, 0.3, 0.7, 0.9]);
  assert.deepEqual(curve!.y, [0.05, 0.15, 0.35, 0.45]);
  assert.ok(rel.data.some((t) => t.name === 'perfect calibration'));
  assert.match(r.html, /One run: nothing to compare/);
});

test('default output path, unknown ids, and the PNG message when Chromium is not installed', async () => {
  const r = writeReport([fx.b.id, fx.a.id], { root: fx.home });
  assert.equal(r.file, join(fx.home, 'experiments', 'reports', `report-${fx.b.id}+1.html`));
  assert.ok(existsSync(r.file));

  assert.throws(() => writeReport([fx.a.id, 'zzz'], { root: fx.home }), (e: unknown) => e instanceof CliniloraError && /no run 'zzz'/.test(e.message) && /nearest: /.test(e.message));

  const env = { CLINILORA_CHROMIUM: join(outDir, 'no-such-chromium') };
  assert.deepEqual(findChromium(env), { path: null, tried: [env.CLINILORA_CHROMIUM] });
  const pngDir = join(outDir, 'png');
  await assert.rejects(exportPngs(r.file, r.figures, pngDir, { env }), (e: unknown) => {
    assert.ok(e instanceof CliniloraError);
    assert.equal(e.code, 'E_MISSING');
    assert.match(e.message, /PNG export needs headless Chromium, which is not installed/);
    assert.ok(e.message.includes(env.CLINILORA_CHROMIUM), 'says where it looked');
    assert.match(e.message, /apt-get install chromium/);
    assert.match(e.message, /HTML report was written/);
    return true;
  });
  assert.equal(existsSync(pngDir), false, 'nothing written when PNGs cannot be made');
});
