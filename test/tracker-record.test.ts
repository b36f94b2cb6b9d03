import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JSONFilePreset } from 'lowdb/node';
import { configHash } from '../src/config/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { effectiveStatus, listRuns, newRunId, openRun, readRun, resumeRun, RUN_SCHEMA_VERSION, staleReason, stepSeries, type RunRecord } from '../src/tracker/index.ts';
import { fakeManifest, runChild, smallConfig, trackerUrl } from './tracker-helpers.ts';

// The pitfall this store avoids: under NODE_ENV=test lowdb's presets keep data in memory only.
process.env.NODE_ENV = 'test';

const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
const onDisk = (file: string): RunRecord => JSON.parse(readFileSync(file, 'utf8')) as RunRecord;

function catchError(fn: () => unknown): CliniloraError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CliniloraError, `expected CliniloraError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('control: lowdb JSONFilePreset under NODE_ENV=test writes nothing', async () => {
  const file = join(root, 'preset.json');
  const db = await JSONFilePreset(file, { n: 0 });
  db.data.n = 1;
  await db.write();
  assert.equal(existsSync(file), false);
});

test('a run record is written to disk under NODE_ENV=test and reads back', async () => {
  const config = smallConfig();
  const h = await openRun({ config, root, gitDir, name: 'roundtrip', manifest: fakeManifest(), dataDir: '/data/x', backend: { name: 'cpu', threads: 1, simd: false } });
  assert.ok(existsSync(h.file));
  assert.ok(existsSync(join(h.dir, 'run.lock')), 'the writer holds a lock');
  h.logStep({ step: 1, loss: 2.5, lr: 1e-4, tokensPerSec: 100, gradNorm: 0.5 });
  h.logStep({ step: 2, loss: Number.NaN, lr: 2e-4, gradNorm: Number.POSITIVE_INFINITY });
  h.logEval({ step: 2, metrics: { loss: 2.1 } });
  const art = join(h.dir, 'adapter.bin');
  const bytes = Buffer.from('adapter weights');
  writeFileSync(art, bytes);
  const a = await h.addArtifact(art, { kind: 'adapter' });
  await h.addArtifact(art, { kind: 'adapter' }); // same path again: replaced, not duplicated
  h.finish('completed', { metrics: { accuracy: 0.75 } });

  const disk = onDisk(h.file);
  assert.equal(disk.schema, 'clinilora.run');
  assert.equal(disk.version, RUN_SCHEMA_VERSION);
  assert.equal(RUN_SCHEMA_VERSION, 2);
  assert.deepEqual(disk.seeds, { run: 7, data: 7 }, 'the config seed and the split manifest seed');
  assert.equal(disk.id, h.id);
  assert.equal(disk.name, 'roundtrip');
  assert.equal(disk.task, 'auditor');
  assert.equal(disk.kind, 'train');
  assert.equal(disk.status, 'completed');
  assert.equal(disk.seed, 7);
  assert.deepEqual(disk.config, JSON.parse(JSON.stringify(config)));
  assert.equal(disk.configHash, configHash(config));
  assert.deepEqual(disk.steps.map((s) => [s.step, s.loss, s.lr]), [[1, 2.5, 1e-4], [2, null, 2e-4]]);
  assert.equal(disk.steps[0]?.tokensPerSec, 100);
  assert.equal(disk.steps[1]?.gradNorm, null);
  assert.deepEqual(disk.evals.map((e) => [e.step, e.split, e.metrics]), [[2, 'validation', { loss: 2.1 }]]);
  assert.deepEqual(disk.metrics, { accuracy: 0.75 });
  assert.equal(disk.artifacts.length, 1);
  assert.equal(a.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.deepEqual(disk.artifacts[0], { path: `experiments/runs/${h.id}/adapter.bin`, bytes: bytes.length, sha256: a.sha256, kind: 'adapter' });
  assert.equal(disk.data?.manifestSha256, 'ab'.repeat(32));
  assert.deepEqual(disk.data?.sources, [{ path: 'data/src.csv', bytes: 12, sha256: 'cd'.repeat(32) }], 'source files with sha256, in the record itself');
  assert.deepEqual(JSON.parse(readFileSync(join(h.dir, 'manifest.json'), 'utf8')).splits.train, ['a', 'b']);
  assert.equal(disk.env.backend?.name, 'cpu');
  assert.equal(disk.env.pid, process.pid);
  assert.equal(disk.git.isRepo, false);
  assert.equal(disk.error, null);
  assert.ok(disk.times.ended !== null && Date.parse(disk.times.ended) >= Date.parse(disk.times.started));
  assert.equal(existsSync(join(h.dir, 'run.lock')), false, 'finish releases the lock');

  assert.deepEqual(readRun(h.id, { root }), disk);
  assert.deepEqual(readRun(h.file), disk);
  assert.ok(listRuns({ root }).runs.some((r) => r.id === h.id));
  assert.throws(() => h.logStep({ step: 3, loss: 1, lr: 1 }), /finished run/);
});

test('steps are batched: a step reaches disk within flushMs or on flush()', async () => {
  const h = await openRun({ config: smallConfig(), root, gitDir, flushMs: 60_000, heartbeatMs: 0 });
  h.logStep({ step: 1, loss: 1, lr: 1 });
  assert.equal(onDisk(h.file).steps.length, 0, 'not yet written');
  h.logEval({ step: 1, metrics: { loss: 1 } }); // evals write at once, steps with them
  assert.equal(onDisk(h.file).steps.length, 1);
  h.logStep({ step: 2, loss: 1, lr: 1 });
  h.flush();
  assert.equal(onDisk(h.file).steps.length, 2);
  h.finish('interrupted');
  const z = await openRun({ config: smallConfig(), root, gitDir, flushMs: 0, heartbeatMs: 0 });
  z.logStep({ step: 1, loss: 1, lr: 1 });
  assert.equal(onDisk(z.file).steps.length, 1, 'flushMs 0 writes every step');
  z.finish('completed');
});

test('bad step input is refused at the call, naming the field', async () => {
  const h = await openRun({ config: smallConfig(), root, gitDir });
  assert.equal(catchError(() => h.logStep({ step: -1, loss: 1, lr: 1 })).details.field, 'step');
  assert.equal(catchError(() => h.logStep({ step: 1.5, loss: 1, lr: 1 })).details.field, 'step');
  assert.equal(catchError(() => h.logStep({ step: 1, loss: 1, lr: Number.NaN })).details.field, 'lr');
  assert.equal(catchError(() => h.logEval({ metrics: { f1: Number.NaN } })).details.field, 'metrics.f1');
  h.finish('completed');
});

test('a failed run records the error and stack', async () => {
  const h = await openRun({ config: smallConfig(), root, gitDir, kind: 'eval' });
  const err = new CliniloraError('E_SHAPE', 'adapter does not fit', { field: 'lora_A' });
  h.finish('failed', { error: err });
  const r = readRun(h.id, { root });
  assert.equal(r.status, 'failed');
  assert.equal(r.kind, 'eval');
  assert.equal(r.error?.code, 'E_SHAPE');
  assert.match(r.error?.message ?? '', /adapter does not fit/);
  assert.match(r.error?.stack ?? '', /tracker-record\.test\.ts/);
});

async function validRecordFile(): Promise<{ file: string; record: Record<string, unknown> }> {
  const h = await openRun({ config: smallConfig(), root, gitDir });
  h.logStep({ step: 0, loss: 3, lr: 0 });
  h.logStep({ step: 1, loss: 2, lr: 1e-4 });
  h.finish('completed');
  return { file: h.file, record: onDisk(h.file) as unknown as Record<string, unknown> };
}

test('a broken record is an error naming the field', async () => {
  const { file, record } = await validRecordFile();
  const cases: [string, (r: Record<string, unknown>) => void][] = [
    ['steps[1].loss', (r) => ((r.steps as Record<string, unknown>[])[1]!.loss = 'low')],
    ['configHash', (r) => delete r.configHash],
    ['status', (r) => (r.status = 'finished')],
    ['times.started', (r) => ((r.times as Record<string, unknown>).started = 'yesterday')],
    ['git.commit', (r) => ((r.git as Record<string, unknown>).commit = 42)],
    ['surprise', (r) => (r.surprise = true)],
  ];
  for (const [field, breakIt] of cases) {
    const r = structuredClone(record);
    breakIt(r);
    writeFileSync(file, JSON.stringify(r));
    const e = catchError(() => readRun(file));
    assert.equal(e.code, 'E_FORMAT');
    assert.equal(e.details.field, field);
    assert.equal(e.details.file, file);
  }
  writeFileSync(file, '{"schema": "clinilora.run", "vers');
  assert.match(catchError(() => readRun(file)).message, /not valid JSON/);
  const listing = listRuns({ root });
  assert.ok(listing.broken.some((b) => b.file === file), 'broken records are listed, not dropped');
  writeFileSync(file, JSON.stringify(record));
  assert.equal(readRun(file).status, 'completed');
});

test('a record from a newer schema version is refused clearly', async () => {
  const { file, record } = await validRecordFile();
  writeFileSync(file, JSON.stringify({ ...record, version: RUN_SCHEMA_VERSION + 1, somethingNew: [] }));
  const e = catchError(() => readRun(file));
  assert.equal(e.code, 'E_UNSUPPORTED');
  assert.equal(e.details.field, 'version');
  assert.match(e.message, /newer clinilora/);
  writeFileSync(file, JSON.stringify({ ...record, schema: 'other' }));
  assert.equal(catchError(() => readRun(file)).details.field, 'schema');
});

test('a missing run names the path', () => {
  const e = catchError(() => readRun('20990101-000000-000-abcdef', { root }));
  assert.equal(e.code, 'E_MISSING');
  assert.match(e.details.file ?? '', /20990101-000000-000-abcdef\/run\.json$/);
});

test('resume appends to the same record; a re-logged step coexists and stepSeries keeps the latest', async () => {
  const h = await openRun({ config: smallConfig(), root, gitDir });
  for (let s = 1; s <= 3; s++) h.logStep({ step: s, loss: 10 - s, lr: 1 });
  // one writer per run: a second writer is refused while the first holds it
  assert.match(catchError(() => resumeRun(h.id, { root })).message, /already open for writing in this process/);
  h.finish('interrupted');
  const r = resumeRun(h.id, { root });
  r.logStep({ step: 3, loss: 6.5, lr: 1 }); // resumed from the step-2 checkpoint
  r.logStep({ step: 4, loss: 6, lr: 1 });
  r.finish('completed');
  const rec = readRun(h.id, { root });
  assert.equal(rec.times.resumed.length, 1);
  assert.deepEqual(rec.steps.map((s) => s.step), [1, 2, 3, 3, 4]);
  assert.deepEqual(stepSeries(rec).map((s) => [s.step, s.loss]), [[1, 9], [2, 8], [3, 6.5], [4, 6]]);
  assert.match(catchError(() => resumeRun(h.id, { root })).message, /completed run cannot be resumed/);
});

test('ids are unique and sort by time', () => {
  const a = newRunId(new Date('2025-01-01T00:00:00.000Z'));
  const b = newRunId(new Date('2025-01-01T00:00:00.001Z'));
  assert.ok(a < b);
  assert.match(a, /^20250101-000000-000-[0-9a-f]{6}$/);
  assert.notEqual(newRunId(new Date(0)), newRunId(new Date(0)));
});

test('a process killed with SIGKILL leaves a valid record that reads as crashed with its partial curve', async () => {
  const code = `
    import { openRun } from ${JSON.stringify(trackerUrl)};
    const h = await openRun({ config: { task: 'auditor', seed: 1 }, root: ${JSON.stringify(root)}, gitDir: ${JSON.stringify(gitDir)}, name: 'killed', flushMs: 20 });
    console.log('ID ' + h.id);
    for (let s = 0; s < 40; s++) { h.logStep({ step: s, loss: 1 / (s + 1), lr: 1e-3 }); await new Promise((r) => setTimeout(r, 5)); }
    process.kill(process.pid, 'SIGKILL');
  `;
  const res = await runChild(code);
  assert.equal(res.signal, 'SIGKILL', res.out);
  const id = /ID (\S+)/.exec(res.out)?.[1];
  assert.ok(id !== undefined, res.out);
  const rec = readRun(id, { root });
  assert.equal(rec.status, 'running');
  assert.ok(rec.steps.length >= 20 && rec.steps.length <= 40, `partial curve: ${rec.steps.length} steps`);
  assert.deepEqual(rec.steps.map((s) => s.step), [...Array(rec.steps.length).keys()]);
  // On this host its pid is checked: dead, so crashed at once, heartbeat fresh or not.
  assert.equal(effectiveStatus(rec, Date.parse(rec.times.heartbeat) + 1000), 'crashed');
  assert.match(staleReason(rec) ?? '', /process \d+ on .* is gone/);
  assert.equal(listRuns({ root }).runs.find((r) => r.id === id)?.status, 'running', 'crashed is derived, never written');
  // Seen from another host (pid unknowable) it stays running until the heartbeat is stale.
  const remote = { ...rec, env: { ...rec.env, host: 'another-host' } };
  assert.equal(effectiveStatus(remote, Date.parse(rec.times.heartbeat) + 1000), 'running');
  assert.equal(effectiveStatus(remote, Date.parse(rec.times.heartbeat) + 10 * 60_000), 'crashed');
  // A live pid on this host keeps a run running through a long silent phase (a blocking evaluation).
  const live = { ...rec, env: { ...rec.env, pid: process.pid } };
  assert.equal(effectiveStatus(live, Date.parse(rec.times.heartbeat) + 10 * 60_000), 'running');
  // its lock belongs to a dead process: the run can be taken over and closed
  const r = resumeRun(id, { root });
  r.finish('interrupted');
  assert.equal(readRun(id, { root }).status, 'interrupted');
});

test('a process that exits without finish writes its last steps on exit', async () => {
  const code = `
    import { openRun } from ${JSON.stringify(trackerUrl)};
    const h = await openRun({ config: { task: 'alpacare', seed: 3 }, root: ${JSON.stringify(root)}, gitDir: ${JSON.stringify(gitDir)}, flushMs: 60000 });
    console.log('ID ' + h.id);
    for (let s = 0; s < 5; s++) h.logStep({ step: s, loss: 1, lr: 1 });
  `;
  const res = await runChild(code);
  assert.equal(res.code, 0, res.out);
  const id = /ID (\S+)/.exec(res.out)?.[1] ?? '';
  const rec = readRun(id, { root });
  assert.equal(rec.steps.length, 5);
  assert.equal(rec.status, 'running');
  assert.equal(effectiveStatus(rec), 'crashed', 'never finished, process gone');
  assert.equal(existsSync(join(root, 'experiments', 'runs', id, 'run.lock')), false);
});

test('a run opened inside a notebook cell records the notebook and cell as its origin; outside one, none', async () => {
  const config = smallConfig();
  const outside = await openRun({ config, root, gitDir, name: 'plain' });
  outside.finish('completed');
  assert.equal(readRun(outside.id, { root }).origin, null);
  const saved = { nb: process.env.CLINILORA_NOTEBOOK, cell: process.env.CLINILORA_NOTEBOOK_CELL };
  process.env.CLINILORA_NOTEBOOK = '/work/notebooks/03-auditor.ipynb';
  process.env.CLINILORA_NOTEBOOK_CELL = '4';
  try {
    const inside = await openRun({ config, root, gitDir, name: 'from-a-cell' });
    inside.finish('completed');
    const o = readRun(inside.id, { root }).origin;
    assert.equal(o?.notebook, '/work/notebooks/03-auditor.ipynb');
    assert.equal(o?.cell, 4);
  } finally {
    for (const [k, v] of [['CLINILORA_NOTEBOOK', saved.nb], ['CLINILORA_NOTEBOOK_CELL', saved.cell]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
