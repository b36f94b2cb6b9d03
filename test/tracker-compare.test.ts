/** runs ls/show/diff/rm/tag/export through the library (src/tracker/compare.ts, export.ts). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defineConfig } from '../src/config/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { diffIsEmpty, diffRuns, findRun, findRuns, formatDiff, summarizeRun } from '../src/tracker/compare.ts';
import { removeRuns, tagRun } from '../src/tracker/manage.ts';
import { exportRuns, rowColumns, runRows, runsFrame } from '../src/tracker/export.ts';
import { hashFiles, openRun, readRun, runsDir, type RunRecord } from '../src/tracker/index.ts';
import { makeRuns } from './report-fixtures.ts';

process.env.NODE_ENV = 'test';
const fx = await makeRuns();
const root = fx.home;

function catchError(fn: () => unknown): CliniloraError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CliniloraError, `expected CliniloraError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('ls: newest first, filters by task, status (crashed from a stale heartbeat), tag and kind', () => {
  const ids = (f: Parameters<typeof findRuns>[0]): string[] => findRuns(f, { root }).runs.map((r) => r.id);
  assert.deepEqual(ids({}), [fx.d.id, fx.c.id, fx.b.id, fx.a.id]);
  assert.deepEqual(ids({ task: 'auditor' }), [fx.d.id, fx.b.id, fx.a.id]);
  assert.deepEqual(ids({ task: 'heart-risk' }), [fx.c.id]);
  assert.deepEqual(ids({ status: 'crashed' }), [fx.d.id]);
  assert.deepEqual(ids({ status: 'running' }), []);
  assert.deepEqual(ids({ status: 'completed' }), [fx.c.id, fx.b.id, fx.a.id]);
  assert.deepEqual(ids({ tag: 'baseline' }), [fx.a.id]);
  assert.deepEqual(ids({ kind: 'eval' }), [fx.c.id]);
  // The recorded status of d is still 'running': only its heartbeat says it died.
  assert.equal(fx.d.status, 'running');
  const d = summarizeRun(fx.d);
  assert.equal(d.status, 'crashed');
  assert.equal(d.steps, 2);
  assert.deepEqual(d.metric, { name: 'loss', value: 2.8 }, 'no final metrics: the last logged loss');
  assert.deepEqual(summarizeRun(fx.a).metric, { name: 'accuracy', value: 0.5 });
  assert.deepEqual(summarizeRun(fx.c).metric, { name: 'auc', value: 0.7 });
});

test('show: by id, unique prefix or path; unknown and ambiguous ids are errors listing ids', () => {
  assert.equal(findRun(fx.b.id, { root }).id, fx.b.id);
  assert.equal(findRun(join(runsDir(root), fx.b.id, 'run.json')).id, fx.b.id);
  const others = [fx.a.id, fx.c.id, fx.d.id];
  // The shortest prefix of b no other id shares.
  let n = 1;
  while (others.some((o) => o.startsWith(fx.b.id.slice(0, n)))) n++;
  assert.equal(findRun(fx.b.id.slice(0, n), { root }).id, fx.b.id);

  const typo = `${fx.a.id.slice(0, -1)}z`;
  const e = catchError(() => findRun(typo, { root }));
  assert.equal(e.code, 'E_MISSING');
  assert.ok(e.message.includes(`'${typo}'`), e.message);
  assert.match(e.message, /nearest: /);
  assert.ok(e.message.includes(fx.a.id), `the nearest ids include the one a character away: ${e.message}`);

  const amb = catchError(() => findRun(fx.a.id.slice(0, 4), { root }));
  assert.equal(amb.code, 'E_ARG');
  assert.match(amb.message, /ambiguous/);
  const empty = catchError(() => findRun('nope', { root: mkdtempSync(join(tmpdir(), 'clinilora-empty-')) }));
  assert.match(empty.message, /no run 'nope'.*no runs yet/);
});

test('diff: only the differing config keys, data manifests and sample ids, metrics with b − a deltas', () => {
  const d = diffRuns(fx.a.id, fx.b.id, { root });
  assert.deepEqual(d.config, [
    { key: 'lora.r', a: 16, b: 8 },
    { key: 'training.lr', a: 3e-4, b: 1e-3 },
  ]);
  assert.deepEqual(d.data.changes.map((c) => c.key), ['manifestSha256']);
  assert.deepEqual(d.data.samples, [{ split: 'test', onlyA: 1, onlyB: 1, firstOnlyA: ['d'], firstOnlyB: ['e'] }]);
  assert.deepEqual(d.git, [], 'same repository state');
  assert.deepEqual(d.env, [], 'same process (pid is not a difference)');
  assert.deepEqual(d.run.map((c) => c.key).sort(), ['configHash', 'tags']);
  const m = Object.fromEntries(d.metrics.map((x) => [x.key, x]));
  assert.deepEqual(Object.keys(m).sort(), ['accuracy', 'final_loss', 'only_b'], 'steps (5 in both) is not shown');
  assert.equal(m.accuracy!.delta, 0.75 - 0.5);
  assert.ok(Math.abs(m.final_loss!.delta! - (0.9 - 1.2)) < 1e-12);
  assert.deepEqual(m.only_b, { key: 'only_b', a: null, b: 1, delta: null });

  const text = formatDiff(d);
  assert.match(text, /^ {2}training\.lr\s+0\.0003 → 0\.001$/m);
  assert.match(text, /^ {2}accuracy\s+0\.5 → 0\.75 {2}\(\+0\.25\)$/m);
  assert.match(text, /samples\.test: 1 only in a \(d\), 1 only in b \(e\)/);
  assert.doesNotMatch(text, /maxSteps|seed/);

  const same = diffRuns(fx.a.id, fx.a.id, { root });
  assert.ok(diffIsEmpty(same));
  assert.match(formatDiff(same), /no differences/);
  // Across tasks the config and status differ, and the auditor-only data is absent on one side.
  const cross = diffRuns(fx.a.id, fx.c.id, { root });
  assert.ok(cross.config.some((c) => c.key === 'task' && c.a === 'auditor' && c.b === 'heart-risk'));
  assert.deepEqual(cross.data.changes, [{ key: 'data', a: 'ab'.repeat(32), b: null }]);
});

test('tag: add, remove, filter; bad tags refused; the record stays valid on disk', () => {
  assert.deepEqual(tagRun(fx.b.id, ['sweep-1', 'best'], { root }), ['sweep-1', 'best']);
  assert.deepEqual(readRun(fx.b.id, { root }).tags, ['sweep-1', 'best']);
  assert.deepEqual(tagRun(fx.b.id, ['best'], { root }), ['sweep-1', 'best'], 'adding a present tag changes nothing');
  assert.deepEqual(findRuns({ tag: 'best' }, { root }).runs.map((r) => r.id), [fx.b.id]);
  assert.deepEqual(tagRun(fx.b.id, ['sweep-1'], { root, remove: true }), ['best']);
  assert.deepEqual(readRun(fx.b.id, { root }).tags, ['best']);
  assert.match(catchError(() => tagRun(fx.b.id, ['two words'], { root })).message, /bad tag 'two words'/);
  assert.equal(catchError(() => tagRun('missing-id', ['x'], { root })).code, 'E_MISSING');
});

test('export: CSV parses back (danfojs) with one row per run, config and metric columns; frame in code', async () => {
  const csv = exportRuns('csv', { root });
  const file = join(root, 'runs.csv');
  writeFileSync(file, csv);
  const dfd = await import('danfojs-node');
  const df = await dfd.readCSV(file);
  const cols = df.columns;
  for (const c of ['id', 'task', 'status', 'config.training.lr', 'config.lora.r', 'metrics.accuracy', 'metrics.only_b', 'metrics.auc']) assert.ok(cols.includes(c), `column ${c} in ${cols.join(',')}`);
  assert.equal(df.shape[0], 4);
  const ids = df.column('id').values as string[];
  assert.deepEqual(ids, [fx.d.id, fx.c.id, fx.b.id, fx.a.id]);
  const at = (col: string, id: string): unknown => (df.column(col).values as unknown[])[ids.indexOf(id)];
  assert.equal(at('metrics.accuracy', fx.b.id), 0.75);
  assert.equal(at('config.training.lr', fx.a.id), 3e-4);
  assert.equal(at('status', fx.d.id), 'crashed');

  const json = JSON.parse(exportRuns('json', { root, filter: { task: 'auditor' } })) as Record<string, unknown>[];
  assert.equal(json.length, 3);
  assert.equal(json.find((r) => r.id === fx.a.id)!['metrics.only_b'], null, 'every column present, null where absent');

  const frame = await runsFrame({ root });
  assert.deepEqual(frame.shape, [4, rowColumns(runRows({ root })).length]);
  const lr = frame.column('config.training.lr').values as number[];
  assert.deepEqual(lr.slice(2), [1e-3, 3e-4]);
  const auc = frame.column('metrics.auc').values as number[];
  assert.ok(Number.isNaN(auc[0]!) && auc[1] === 0.7, 'numeric columns keep NaN where a run lacks the metric');
});

test('rm: a live running run is refused unless forced; a bad id deletes nothing; removed runs are gone', async () => {
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const live = await openRun({ config: defineConfig({ task: 'auditor', seed: 1 }), root, gitDir, heartbeatMs: 0, flushMs: 0 });
  const e = catchError(() => removeRuns([live.id], { root }));
  assert.match(e.message, /is running/);
  assert.match(e.message, /--force/);
  assert.equal(catchError(() => removeRuns([fx.d.id, 'no-such-run'], { root })).code, 'E_MISSING');
  assert.ok(existsSync(join(runsDir(root), fx.d.id, 'run.json')), 'nothing deleted when one id is bad');
  assert.deepEqual(removeRuns([fx.d.id], { root }), [fx.d.id], 'a crashed run can be removed');
  live.finish('interrupted');
  const forced = await openRun({ config: defineConfig({ task: 'auditor', seed: 1 }), root, gitDir, heartbeatMs: 0, flushMs: 0 });
  assert.deepEqual(removeRuns([forced.id], { root, force: true }), [forced.id]);
  assert.deepEqual(findRuns({}, { root }).runs.map((r) => r.id), [live.id, fx.c.id, fx.b.id, fx.a.id]);
  assert.equal(catchError(() => findRun(fx.d.id, { root })).code, 'E_MISSING');
});

test('record extras (optional in schema v1, v2 adds seeds): git patch of staged + unstaged changes, package versions, lockfile hash, base model', async () => {
  const git = (cwd: string, ...args: string[]): string =>
    execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
  const repo = mkdtempSync(join(tmpdir(), 'clinilora-git-'));
  git(repo, 'init', '-q', '-b', 'trunk');
  writeFileSync(join(repo, 'a.txt'), 'one\n');
  writeFileSync(join(repo, 'b.txt'), 'two\n');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'first');
  writeFileSync(join(repo, 'a.txt'), 'one changed\n'); // unstaged
  writeFileSync(join(repo, 'b.txt'), 'two staged\n');
  git(repo, 'add', 'b.txt'); // staged
  writeFileSync(join(repo, 'new.txt'), 'untracked\n');

  const run = await openRun({ config: defineConfig({ task: 'auditor', seed: 1 }), root, gitDir: repo, heartbeatMs: 0, flushMs: 0 });
  run.setBaseModel({ nameOrPath: 'models/x', sha256: await hashFiles([join(repo, 'a.txt')], repo), quantization: 'nf4' });
  run.finish('completed');
  const r = readRun(run.id, { root });
  assert.equal(r.git.patchFile, 'git.patch');
  const patch = readFileSync(join(run.dir, 'git.patch'), 'utf8');
  assert.equal(patch, git(repo, 'diff', '--binary', 'HEAD'), 'the patch is `git diff --binary HEAD` (staged + unstaged; binary files apply too)');
  assert.match(patch, /\+one changed/);
  assert.match(patch, /\+two staged/);
  assert.equal(r.git.patchSha256, createHash('sha256').update(patch).digest('hex'));
  assert.deepEqual(r.git.untracked, ['new.txt']);
  const pkg = (name: string): string => (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(r.env.packages?.lowdb, pkg('lowdb'));
  assert.equal(r.env.packages?.['simple-git'], pkg('simple-git'));
  assert.equal(r.env.lockfileSha256, createHash('sha256').update(readFileSync(join(import.meta.dirname, '..', 'package-lock.json'))).digest('hex'));
  assert.equal(r.baseModel?.quantization, 'nf4');
  assert.match(r.baseModel?.sha256 ?? '', /^[0-9a-f]{64}$/);

  // The patch difference shows in a diff against a clean-tree run.
  const d = diffRuns(fx.a.id, run.id, { root });
  assert.ok(d.git.some((c) => c.key === 'patchSha256' && c.a === undefined));

  // A version-1 record written before these fields existed still reads; unknown fields are still refused.
  const file = join(runsDir(root), run.id, 'run.json');
  const old = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  delete old.baseModel;
  delete old.env.packages;
  delete old.env.lockfileSha256;
  delete old.git.patchFile;
  delete old.git.patchSha256;
  delete old.git.patchBytes;
  delete old.seeds;
  delete old.origin;
  writeFileSync(file, JSON.stringify({ ...old, version: 1 }));
  assert.equal(readRun(run.id, { root }).version, 2, 'a v1 record reads, upgraded to the current version');
  // v2 fields in a record that says version 1: refused (that reader would not know them).
  writeFileSync(file, JSON.stringify({ ...old, version: 1, seeds: { run: 1 } }));
  assert.equal(catchError(() => readRun(run.id, { root })).details.field, 'seeds');
  writeFileSync(file, JSON.stringify({ ...old, env: { ...old.env, extra: 1 } }));
  assert.match(catchError(() => readRun(run.id, { root })).message, /'env\.extra'/);
  // rm of an unreadable record: refused without --force (whether it still runs is unknown).
  assert.match(catchError(() => removeRuns([run.id], { root })).message, /unreadable.*--force/);
  assert.deepEqual(removeRuns([run.id], { root, force: true }), [run.id]);
});
