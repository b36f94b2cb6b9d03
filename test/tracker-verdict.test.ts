/**
 * The comparison behind `reproduce` (src/tracker/verdict.ts) on records made through openRun and
 * changed in known places; the v2 `reproduction` field's validation; base-model lineage.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliniloraError } from '../src/errors.ts';
import { diffRecords } from '../src/tracker/compare.ts';
import {
  compareManifests, compareRecords, CROSS_BACKEND_TOLERANCE, formatVerdict, isTimingKey, openRun, readRun, setupChanges, validateRunRecord,
  type ReproductionInfo, type RunRecord,
} from '../src/tracker/index.ts';
import { fakeManifest, smallConfig } from './tracker-helpers.ts';

process.env.NODE_ENV = 'test';
const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));

const h = await openRun({ config: smallConfig(), root, gitDir, manifest: fakeManifest(), backend: { name: 'cpu', threads: 1, simd: false }, heartbeatMs: 0, flushMs: 0 });
const LOSSES = [2.5, 2.25, 2.125, 2.0625];
for (let s = 1; s <= 4; s++) h.logStep({ step: s, loss: LOSSES[s - 1]!, lr: 1e-4 * s, gradNorm: 0.5 / s, tokensPerSec: 100 + s, epoch: s / 4 });
h.logEval({ step: 2, split: 'validation', metrics: { loss: 2.2, perplexity: 9.03 } });
h.logEval({ step: 4, split: 'test', metrics: { accuracy: 0.5, gen_ms: 40, gen_tokens_per_sec: 20 } });
h.finish('completed', { metrics: { final_loss: 2.0625, accuracy: 0.5, train_ms: 900, total_ms: 1200, gen_tokens_per_sec: 20 } });
const A: RunRecord = readRun(h.id, { root });
const clone = (): RunRecord => structuredClone(A);

test('timings are never compared; an identical re-run has no differences', () => {
  for (const k of ['ms', 'train_ms', 'gen_ms', 'total_ms', 'gen_tokens_per_sec', 'tokensPerSec', 'time']) assert.ok(isTimingKey(k), k);
  for (const k of ['loss', 'accuracy', 'steps', 'train_tokens', 'msg_count']) assert.ok(!isTimingKey(k), k);
  const b = clone();
  b.steps = b.steps.map((s) => ({ ...s, tokensPerSec: 5, ms: 99_999 }));
  b.metrics = { ...b.metrics!, train_ms: 1, total_ms: 2, gen_tokens_per_sec: 3 };
  b.evals[1]!.metrics.gen_ms = 1;
  const c = compareRecords(A, b, null);
  assert.deepEqual(c.differences, []);
  assert.deepEqual(c.compared, { samples: 0, steps: 4, evals: 2, metrics: 2 });
});

test('exact: one ulp at step 3 is the first difference, with both values; a tolerance accepts it', () => {
  const b = clone();
  const nudged = LOSSES[2]! * (1 + Number.EPSILON);
  b.steps[2]!.loss = nudged;
  const exact = compareRecords(A, b, null);
  assert.deepEqual(exact.differences, [{ where: 'step', step: 3, key: 'loss', a: LOSSES[2], b: nudged }]);
  assert.deepEqual(compareRecords(A, b, CROSS_BACKEND_TOLERANCE).differences, []);
  // Outside the tolerance: |a − b| > atol + rtol·|a|.
  b.steps[2]!.loss = LOSSES[2]! * (1 + 2 * CROSS_BACKEND_TOLERANCE.rtol);
  assert.equal(compareRecords(A, b, CROSS_BACKEND_TOLERANCE).differences[0]?.key, 'loss');
});

test('differences come in the order they happened: data, steps and evaluations by step, final metrics, status', () => {
  const b = clone();
  b.steps[3]!.gradNorm = 0.2; // step 4
  b.evals[0]!.metrics.loss = 2.3; // eval at step 2
  b.steps.splice(2, 1); // step 3 never logged
  b.metrics = { ...b.metrics!, accuracy: 0.75 };
  b.status = 'failed';
  const mb = fakeManifest();
  mb.splits.train = ['b', 'a'];
  const c = compareRecords(A, b, null, { a: fakeManifest(), b: mb });
  assert.deepEqual(
    c.differences.map((d) => [d.where, d.step, d.key, d.a, d.b]),
    [
      ['data', null, 'samples.train[0]', 'a', 'b'],
      ['eval', 2, 'loss', 2.2, 2.3],
      ['step', 3, 'logged', 'yes', null],
      ['step', 4, 'gradNorm', 0.125, 0.2],
      ['metric', null, 'accuracy', 0.5, 0.75],
      ['status', null, 'status', 'completed', 'failed'],
    ],
  );
  assert.equal(c.compared.samples, 4);
  assert.deepEqual(compareManifests(fakeManifest(), fakeManifest()).differences, []);
});

test('setup changes explain a difference: config seed, backend, commit; outDir and bookkeeping are left out', () => {
  const b = clone();
  b.config = { ...b.config, seed: 8, outDir: '/elsewhere' };
  b.seed = 8;
  b.env = { ...b.env, backend: { name: 'wasm', threads: 2, simd: true }, host: 'other-host' };
  b.git = { ...b.git, isRepo: true, commit: 'c'.repeat(40) };
  b.tags = ['rerun'];
  b.times = { ...b.times, started: new Date().toISOString() };
  const setup = setupChanges(diffRecords(A, b, { root }));
  assert.deepEqual(setup, [
    'config seed: 7 → 8',
    `git commit: null → ${'c'.repeat(40)}`,
    'environment backend.name: cpu → wasm',
    'environment backend.simd: false → true',
    'environment backend.threads: 1 → 2',
  ]);
});

test('the verdict text names the first difference and the candidates; the record validates it', async () => {
  const b = clone();
  b.steps[0]!.loss = 2.75;
  const c = compareRecords(A, b, null);
  const v: ReproductionInfo = {
    of: A.id, rerun: 'rerun-1', reproduced: false, mode: 'exact', tolerance: null, source: 'working-tree', compared: c.compared,
    firstDifference: c.differences[0]!, differences: c.differences, differenceCount: c.differences.length, setup: ['config seed: 7 → 8'], notes: [],
  };
  const text = formatVerdict(v);
  assert.match(text, /^NOT REPRODUCED \(compared exactly\)$/m);
  assert.match(text, /^first difference: step 1 loss: recorded 2\.5, re-run 2\.75 \(b − a = 0\.25\)$/m);
  assert.match(text, /^setup differences that can explain it:\n {2}config seed: 7 → 8$/m);

  const vr = await openRun({ config: smallConfig(), kind: 'reproduce', root, gitDir, parents: [{ id: A.id, role: 'reproduces' }], heartbeatMs: 0 });
  vr.setReproduction(v);
  vr.finish('completed', { metrics: { reproduced: 0 } });
  const rec = readRun(vr.id, { root });
  assert.deepEqual(rec.reproduction, v);
  const broken = structuredClone(rec) as unknown as { reproduction: { firstDifference: { where: string } } };
  broken.reproduction.firstDifference.where = 'somewhere';
  assert.throws(() => validateRunRecord(broken, 'x.json'), (e) => e instanceof CliniloraError && e.details.field === 'reproduction.firstDifference.where');
});

test('base-model lineage: a base whose weights a recorded run produced links that run; changed weights do not', async () => {
  const model = join(root, 'models', 'tiny');
  mkdirSync(model, { recursive: true });
  writeFileSync(join(model, 'config.json'), '{}');
  writeFileSync(join(model, 'model.safetensors'), Buffer.alloc(4096, 7));
  const producer = await openRun({ config: { task: 'pretrain', seed: 1 }, root, gitDir, heartbeatMs: 0 });
  await producer.addArtifact(join(model, 'model.safetensors'), { kind: 'model' });
  producer.finish('completed');
  const user = await openRun({ config: smallConfig(), root, gitDir, heartbeatMs: 0 });
  user.setBaseModel({ nameOrPath: model, sha256: null, quantization: 'int8' });
  user.finish('completed');
  assert.deepEqual(readRun(user.id, { root }).parents, [{ id: producer.id, role: 'base-model' }]);
  writeFileSync(join(model, 'model.safetensors'), Buffer.alloc(4096, 8)); // same size, other weights
  const other = await openRun({ config: smallConfig(), root, gitDir, heartbeatMs: 0 });
  other.setBaseModel({ nameOrPath: model, sha256: null, quantization: 'int8' });
  other.finish('completed');
  assert.deepEqual(readRun(other.id, { root }).parents, []);
  // A random preset base: its init seed is among the record's seeds.
  const preset = await openRun({ config: smallConfig(), root, gitDir, heartbeatMs: 0 });
  preset.setBaseModel({ nameOrPath: 'preset:phi3-nano?hiddenSize=32&seed=11', sha256: null, quantization: 'none' });
  preset.finish('completed');
  assert.deepEqual(readRun(preset.id, { root }).seeds, { run: 7, init: 11 });
});
