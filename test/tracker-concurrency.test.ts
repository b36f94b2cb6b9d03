import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listRuns, openRun, readRun, resumeRun } from '../src/tracker/index.ts';
import { runChild, smallConfig, trackerUrl } from './tracker-helpers.ts';

const STEPS = 150;

test('two processes writing runs at once: both complete and valid, nothing lost', async () => {
  const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  // flushMs 0: every step rewrites the record, the most contention we can make
  const child = (name: string): string => `
    import { openRun } from ${JSON.stringify(trackerUrl)};
    const h = await openRun({ config: { task: 'auditor', seed: 5 }, name: ${JSON.stringify(name)}, root: ${JSON.stringify(root)}, gitDir: ${JSON.stringify(gitDir)}, flushMs: 0 });
    for (let s = 0; s < ${STEPS}; s++) h.logStep({ step: s, loss: 1 / (s + 1), lr: 1e-4 });
    h.logEval({ step: ${STEPS}, metrics: { loss: 0.5 } });
    h.finish('completed', { metrics: { accuracy: 0.5 } });
  `;
  const results = await Promise.all([runChild(child('p1'), { NODE_ENV: 'test' }), runChild(child('p2'), { NODE_ENV: 'test' })]);
  for (const r of results) assert.equal(r.code, 0, r.out);
  const listing = listRuns({ root });
  assert.deepEqual(listing.broken, []);
  assert.equal(listing.runs.length, 2);
  assert.deepEqual(listing.runs.map((r) => r.name).sort(), ['p1', 'p2']);
  for (const r of listing.runs) {
    assert.equal(r.status, 'completed');
    assert.deepEqual(r.steps.map((s) => s.step), [...Array(STEPS).keys()]);
    assert.equal(r.evals.length, 1);
  }
  // no temp or lock files left behind
  for (const r of listing.runs) assert.deepEqual(readdirSync(join(root, 'experiments', 'runs', r.id)), ['run.json']);
});

test('two runs open at once in one process (a notebook opening twice) stay separate', async () => {
  const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const [a, b] = await Promise.all([openRun({ config: smallConfig(), root, gitDir, flushMs: 0 }), openRun({ config: smallConfig(), root, gitDir, flushMs: 0 })]);
  assert.notEqual(a.id, b.id);
  for (let s = 0; s < 20; s++) {
    a.logStep({ step: s, loss: 1, lr: 1 });
    b.logStep({ step: s, loss: 2, lr: 1 });
  }
  a.finish('completed');
  b.finish('completed');
  assert.deepEqual(readRun(a.id, { root }).steps.map((s) => s.loss), Array(20).fill(1));
  assert.deepEqual(readRun(b.id, { root }).steps.map((s) => s.loss), Array(20).fill(2));
});

test('the same run resumed by two processes at once: one writer wins, the other is refused, the record stays whole', async () => {
  const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const h = await openRun({ config: smallConfig(), root, gitDir, heartbeatMs: 0 });
  h.logStep({ step: 0, loss: 1, lr: 1 });
  h.finish('interrupted');
  const child = (tag: number): string => `
    import { resumeRun } from ${JSON.stringify(trackerUrl)};
    let r;
    try { r = resumeRun(${JSON.stringify(h.id)}, { root: ${JSON.stringify(root)}, flushMs: 0, heartbeatMs: 0 }); }
    catch (e) { console.log('REFUSED ' + e.message); process.exit(0); }
    for (let s = 1; s <= 100; s++) r.logStep({ step: s, loss: ${tag}, lr: 1 });
    r.finish('completed');
    console.log('WROTE');
  `;
  const [p, q] = await Promise.all([runChild(child(1), { NODE_ENV: 'test' }), runChild(child(2), { NODE_ENV: 'test' })]);
  const outs = [p.out, q.out];
  // One writes; the other is refused: by the lock while the first writes, or (if it came later) because the run is completed.
  assert.equal(outs.filter((o) => o.includes('WROTE')).length, 1, outs.join('\n---\n'));
  assert.equal(outs.filter((o) => /REFUSED .*(run is open for writing in another process|a completed run cannot be resumed)/.test(o)).length, 1, outs.join('\n---\n'));
  const rec = readRun(h.id, { root });
  assert.equal(rec.status, 'completed');
  assert.equal(rec.steps.length, 101);
  assert.equal(new Set(rec.steps.slice(1).map((s) => s.loss)).size, 1, 'one writer: its steps only');
});

test('a reader in another process never sees a half-written record while steps stream in', async () => {
  const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const h = await openRun({ config: smallConfig(), root, gitDir, heartbeatMs: 0, flushMs: 0 });
  const reader = runChild(`
    import { readRun } from ${JSON.stringify(trackerUrl)};
    let last = -1, reads = 0;
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      const r = readRun(${JSON.stringify(h.id)}, { root: ${JSON.stringify(root)} }); // validates: throws on a torn file
      if (r.steps.length < last) throw new Error('steps went backwards');
      last = r.steps.length; reads++;
      if (r.status === 'completed') break;
    }
    console.log('READS ' + reads + ' LAST ' + last);
  `);
  for (let s = 0; s < 400; s++) {
    h.logStep({ step: s, loss: 1 / (s + 1), lr: 1e-3 });
    if (s % 50 === 0) await new Promise((r) => setTimeout(r, 20));
  }
  h.finish('completed');
  const res = await reader;
  assert.equal(res.code, 0, res.out);
  assert.match(res.out, /READS [1-9]\d*/);
});

test('a notebook cell run twice: the second open of the same run in one process is refused, the first keeps writing', async () => {
  const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const a = await openRun({ config: smallConfig(), root, gitDir, heartbeatMs: 0, flushMs: 0 });
  a.logStep({ step: 0, loss: 1, lr: 1 });
  assert.throws(() => resumeRun(a.id, { root }), /already open for writing in this process.*finish\(\) the first handle/);
  a.logStep({ step: 1, loss: 0.5, lr: 1 });
  a.finish('completed');
  assert.deepEqual(readRun(a.id, { root }).steps.map((s) => s.loss), [1, 0.5]);
});
