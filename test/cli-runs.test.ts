/**
 * `clinilora runs …` and `clinilora report` through a real `node bin/clinilora.js` process, with
 * CLINILORA_HOME pointing at a temporary home of synthetic records (test/report-fixtures.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeRuns } from './report-fixtures.ts';

process.env.NODE_ENV = 'test';
const repo = fileURLToPath(new URL('..', import.meta.url));
const fx = await makeRuns();
const out = mkdtempSync(join(tmpdir(), 'clinilora-cli-runs-'));

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repo, 'bin/clinilora.js'), ...args], {
    cwd: out,
    env: { ...process.env, CLINILORA_HOME: fx.home, ...env },
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The lines of one `section:` of `runs diff` output, as keys. */
function sectionKeys(text: string, section: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(`${section}:`);
  if (start < 0) return [];
  const keys: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith('  ')) break;
    keys.push(l.trim().split(/\s+/)[0]!);
  }
  return keys;
}

test('runs ls: newest first with a crashed run, filters, JSON', () => {
  const r = cli(['runs', 'ls']);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.trim().split('\n');
  assert.match(rows[0]!, /^id\s+name\s+task\s+kind\s+status\s+started/);
  assert.deepEqual(rows.slice(1).map((l) => l.split(/\s+/)[0]), [fx.d.id, fx.c.id, fx.b.id, fx.a.id]);
  const status = (id: string): string => rows.find((l) => l.startsWith(id))!.split(/\s+/)[4]!;
  assert.equal(status(fx.d.id), 'crashed');
  assert.equal(status(fx.a.id), 'completed');
  assert.match(rows.find((l) => l.startsWith(fx.b.id))!, /accuracy 0\.75$/);

  const crashed = cli(['runs', 'ls', '--status', 'crashed', '--json']);
  assert.equal(crashed.status, 0, crashed.stderr);
  const j = JSON.parse(crashed.stdout) as { runs: { id: string; status: string; steps: number }[]; broken: unknown[] };
  assert.deepEqual(j.runs.map((x) => [x.id, x.status, x.steps]), [[fx.d.id, 'crashed', 2]]);
  const heart = cli(['runs', 'ls', '--task', 'heart-risk']);
  assert.deepEqual(heart.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), [fx.c.id]);
  const bad = cli(['runs', 'ls', '--status', 'done']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown status 'done'.*running \| completed/);
});

test('runs diff: only the differing config keys and metric deltas; unknown id names it and the nearest', () => {
  const r = cli(['runs', 'diff', fx.a.id, fx.b.id]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(sectionKeys(r.stdout, 'config'), ['lora.r', 'training.lr']);
  assert.deepEqual(sectionKeys(r.stdout, 'metrics (delta = b − a)'), ['accuracy', 'final_loss', 'only_b']);
  assert.match(r.stdout, /accuracy\s+0\.5 → 0\.75\s+\(\+0\.25\)/);
  assert.match(r.stdout, /final_loss\s+1\.2 → 0\.9\s+\(-0\.3\)/);
  assert.deepEqual(sectionKeys(r.stdout, 'environment'), []);

  const typo = `${fx.b.id.slice(0, -2)}xx`;
  const e = cli(['runs', 'diff', fx.a.id, typo]);
  assert.equal(e.status, 2);
  assert.ok(e.stderr.includes(`no run '${typo}'`), e.stderr);
  assert.match(e.stderr, /nearest: .*\d{8}-/);
  assert.ok(e.stderr.includes(fx.b.id), 'the id two characters away is among the nearest');
  const show = cli(['runs', 'show', fx.c.id, '--json']);
  assert.equal((JSON.parse(show.stdout) as { id: string }).id, fx.c.id);
});

test('report: HTML written with plotly inline; --png without Chromium says so and exits 2', () => {
  const file = join(out, 'r.html');
  const r = cli(['report', fx.a.id, fx.b.id, '--out', file, '--png', join(out, 'png')], { CLINILORA_CHROMIUM: join(out, 'no-chromium') });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^report ${file.replaceAll('/', '\\/')} \\(`, 'm'));
  assert.match(r.stderr, /PNG export needs headless Chromium, which is not installed/);
  const html = readFileSync(file, 'utf8');
  assert.match(html, /plotly\.js v\d+\.\d+\.\d+/);
  assert.doesNotMatch(html, /<script src="http/);
  assert.equal(existsSync(join(out, 'png')), false);
  const ok = cli(['report', fx.c.id, '--out', join(out, 'c.html')]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /1 run\(s\), 1 figure\(s\)/, 'the reliability figure');
});

test('runs tag, export and rm round trip', () => {
  assert.equal(cli(['runs', 'tag', fx.c.id, 'keep', 'paper']).status, 0);
  assert.deepEqual(cli(['runs', 'ls', '--tag', 'paper']).stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), [fx.c.id]);
  assert.match(cli(['runs', 'tag', fx.c.id, 'paper', '--remove']).stdout, /tags: keep$/m);

  const csv = join(out, 'runs.csv');
  const ex = cli(['runs', 'export', '--format', 'csv', '--out', csv, '--task', 'auditor']);
  assert.equal(ex.status, 0, ex.stderr);
  const [header, ...lines] = readFileSync(csv, 'utf8').trim().split('\n');
  assert.equal(lines.length, 3);
  const cols = header!.split(',');
  assert.ok(cols.includes('config.training.lr') && cols.includes('metrics.accuracy'));
  assert.equal(cli(['runs', 'export', '--format', 'xml']).status, 2);

  const refused = cli(['runs', 'rm', fx.d.id]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /would delete 1 run\(s\).*--yes/);
  const rm = cli(['runs', 'rm', fx.d.id, '--yes']);
  assert.equal(rm.status, 0, rm.stderr);
  assert.equal(rm.stdout, `removed ${fx.d.id}\n`);
  assert.equal(existsSync(join(fx.home, 'experiments', 'runs', fx.d.id)), false);
});
