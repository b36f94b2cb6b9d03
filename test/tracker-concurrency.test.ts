import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listRuns, openRun, readRun } from '../src/tracker/index.ts';
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
