/**
 * `clinilora report --png` through a real CLI process and a real headless Chromium (skipped when
 * Debian's chromium is not installed; the missing-Chromium path is tested either way).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliniloraError } from '../src/errors.ts';
import type { Figure } from '../src/report/figures.ts';
import { writeReport } from '../src/report/html.ts';
import { exportPngs, findChromium } from '../src/report/png.ts';
import { makeRuns } from './report-fixtures.ts';

process.env.NODE_ENV = 'test';
const repo = fileURLToPath(new URL('..', import.meta.url));
const fx = await makeRuns();
const out = mkdtempSync(join(tmpdir(), 'clinilora-report-png-'));
const chromium = findChromium(process.env).path;
const noChromium = chromium === null ? 'Debian chromium is not installed' : false;

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/main.ts'), ...args], {
    cwd: repo,
    env: { ...process.env, CLINILORA_HOME: fx.home, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Width and height read from the IHDR chunk, after checking the 8-byte PNG signature. */
function pngHeader(file: string): { width: number; height: number; bytes: number } {
  const b = readFileSync(file);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} starts with the PNG signature`);
  assert.equal(b.toString('latin1', 12, 16), 'IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), bytes: b.length };
}

function figuresOf(html: string): Figure[] {
  const m = /<script type="application\/json" id="clinilora-report">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m !== null);
  return (JSON.parse(m[1]!) as { figures: Figure[] }).figures;
}

test('no Chromium: exit 2, the message names the Debian package, the HTML alone is written', () => {
  const html = join(out, 'missing.html');
  const png = join(out, 'missing-png');
  const r = cli(['report', fx.a.id, '--out', html, '--png', png], { CLINILORA_CHROMIUM: join(out, 'no-such-chromium') });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /PNG export needs headless Chromium, which is not installed/);
  assert.match(r.stderr, /apt-get install chromium/);
  assert.ok(r.stderr.includes(join(out, 'no-such-chromium')), 'says where it looked');
  assert.match(r.stderr, /the HTML report was written, only the PNGs are missing/);
  assert.ok(readFileSync(html, 'utf8').endsWith('</html>\n'), 'the HTML report is complete');
  assert.equal(existsSync(png), false, 'no PNG folder');
});

test('report --png: one real PNG per figure, at the requested width and each figure\'s height', { skip: noChromium }, () => {
  const html = join(out, 'ab.html');
  const png = join(out, 'png');
  const r = cli(['report', fx.a.id, fx.c.id, '--out', html, '--png', png, '--png-width', '640']);
  assert.equal(r.status, 0, r.stderr);
  const figures = figuresOf(readFileSync(html, 'utf8'));
  assert.ok(figures.length >= 3, 'loss, lr, confusion and reliability figures');
  assert.deepEqual(readdirSync(png).sort(), figures.map((f) => `${f.id}.png`).sort(), 'exactly one file per figure, no temp files');
  for (const f of figures) {
    const h = pngHeader(join(png, `${f.id}.png`));
    assert.equal(h.width, 640, f.id);
    assert.equal(h.height, typeof f.layout.height === 'number' ? f.layout.height : 450, f.id);
    assert.ok(h.bytes > 5000, `${f.id}: a drawn figure, not an empty image (${h.bytes} bytes)`);
    assert.ok(r.stdout.includes(`png ${join(png, `${f.id}.png`)}`));
  }
});

test('a figure that fails to render: an error and no PNG at all (not even the good ones)', { skip: noChromium }, async () => {
  const r = writeReport([fx.a.id], { root: fx.home, out: join(out, 'a.html') });
  const bogus: Figure = { id: 'no-such-figure', title: 'x', data: [], layout: {} };
  const dir = join(out, 'partial');
  await assert.rejects(exportPngs(r.file, [...r.figures, bogus], dir), (e: unknown) => e instanceof CliniloraError && /JavaScript error in Chromium/.test(e.message));
  assert.equal(existsSync(dir), false);
});
