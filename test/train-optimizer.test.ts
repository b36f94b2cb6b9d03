/**
 * AdamW against a float64 reference written from PyTorch's documented algorithm, its state through
 * safetensors and back (bitwise continuation), gradient clipping and the lr schedules.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';
import { AdamW, clipGradNorm } from '../src/train/optimizer.ts';
import { lrAt, warmupSteps } from '../src/train/schedule.ts';

before(async () => {
  await initBackend({ backend: 'cpu' });
});

const rnd = (n: number, seed: number): Float32Array => new Rng(seed).fillNormal(new Float32Array(n));
const variable = (data: Float32Array, shape: number[]): tf.Variable => tf.variable(tf.tensor(data, shape), true);

/** torch.optim.AdamW step in float64 (docs' pseudo-code). */
function refAdamW(p: Float64Array, m: Float64Array, v: Float64Array, g: ArrayLike<number>, t: number, lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): void {
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i]! - lr * wd * p[i]!;
    m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
    v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
    const mh = m[i]! / (1 - b1 ** t);
    const vh = v[i]! / (1 - b2 ** t);
    p[i] = p[i]! - (lr * mh) / (Math.sqrt(vh) + eps);
  }
}

test('AdamW matches the PyTorch algorithm (float64 reference) and leaves other variables alone', () => {
  const w0 = rnd(12, 1);
  const w = variable(w0, [3, 4]);
  const other = variable(rnd(5, 2), [5]);
  const otherBefore = other.dataSync().slice();
  const opt = new AdamW([['w', w]], { weightDecay: 0.1 });
  const p = Float64Array.from(w0);
  const m = new Float64Array(12);
  const v = new Float64Array(12);
  const lrs = [1e-2, 3e-2, 2e-2, 5e-3, 1e-2];
  lrs.forEach((lr, k) => {
    const g = rnd(12, 10 + k);
    const gt = tf.tensor(g, [3, 4]);
    opt.apply([gt], lr);
    gt.dispose();
    refAdamW(p, m, v, g, k + 1, lr, 0.1);
  });
  const got = w.dataSync();
  let maxdiff = 0;
  for (let i = 0; i < 12; i++) maxdiff = Math.max(maxdiff, Math.abs(got[i]! - p[i]!));
  assert.ok(maxdiff < 1e-6, `maxdiff ${maxdiff}`);
  assert.ok(Math.abs(got[0]! - w0[0]!) > 1e-3, 'the weight moved');
  assert.deepEqual(other.dataSync(), otherBefore);
  assert.equal(opt.step, 5);
  opt.dispose();
  w.dispose();
  other.dispose();
});

test('state saved to safetensors and restored continues bit for bit; a mismatch changes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-adamw-'));
  const grads = Array.from({ length: 6 }, (_, k) => rnd(8, 100 + k));
  const run = (opt: AdamW, from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      const g = tf.tensor(grads[k]!, [8]);
      opt.apply([g], 1e-2);
      g.dispose();
    }
  };
  const a = variable(rnd(8, 3), [8]);
  const optA = new AdamW([['a', a]]);
  run(optA, 0, 6);

  const b = variable(rnd(8, 3), [8]);
  const optB = new AdamW([['a', b]]);
  run(optB, 0, 3);
  const path = join(dir, 'opt.safetensors');
  optB.save(path);
  const bAt3 = b.dataSync().slice();
  optB.dispose();

  const c = variable(bAt3 as Float32Array, [8]);
  const optC = new AdamW([['a', c]]);
  optC.load(path);
  assert.equal(optC.step, 3);
  run(optC, 3, 6);
  assert.deepEqual(c.dataSync(), a.dataSync());

  // Wrong name: one error naming both missing tensors; the optimizer keeps its state.
  const d = variable(rnd(8, 3), [8]);
  const optD = new AdamW([['other', d]]);
  const bytes = readFileSync(path);
  assert.throws(() => optD.load(path), (e: unknown) => e instanceof CliniloraError && /m\.other: missing/.test(e.message) && /v\.other: missing/.test(e.message));
  assert.equal(optD.step, 0);
  assert.deepEqual(readFileSync(path), bytes);
  for (const x of [optA, optC, optD]) x.dispose();
  for (const x of [a, b, c, d]) x.dispose();
});

test('clipGradNorm returns the pre-clip global norm and scales to maxNorm', () => {
  const g1 = rnd(10, 4);
  const g2 = rnd(7, 5);
  const norm = Math.sqrt([...g1, ...g2].reduce((s, x) => s + x * x, 0));
  const out = clipGradNorm([tf.tensor(g1), tf.tensor(g2)], 1.0);
  assert.ok(Math.abs(out.norm - norm) < 1e-5 * norm);
  const after = Math.sqrt(out.grads.reduce((s, g) => s + (g.dataSync() as Float32Array).reduce((a, x) => a + x * x, 0), 0));
  assert.ok(Math.abs(after - 1) < 1e-5, `clipped norm ${after}`);
  for (const g of out.grads) g.dispose();
  const small = [tf.tensor([0.1, 0.2])];
  const kept = clipGradNorm(small, 1.0);
  assert.equal(kept.grads[0], small[0], 'below the limit: the same tensors');
  kept.grads[0]!.dispose();
});

test('schedules: warmup ratio, then linear or cosine decay to 0 or minLr', () => {
  const base = { lr: 1e-3, warmupRatio: 0.1, totalSteps: 100 };
  assert.equal(warmupSteps(base), 10);
  const lin = { ...base, schedule: 'linear' as const };
  assert.equal(lrAt(0, lin), 0);
  assert.ok(Math.abs(lrAt(5, lin) - 5e-4) < 1e-15);
  assert.equal(lrAt(10, lin), 1e-3);
  assert.ok(Math.abs(lrAt(55, lin) - 5e-4) < 1e-15);
  assert.equal(lrAt(100, lin), 0);
  const cos = { ...base, schedule: 'cosine' as const };
  assert.ok(Math.abs(lrAt(55, cos) - 5e-4) < 1e-12, 'half-way down the cosine');
  assert.ok(lrAt(30, cos) > lrAt(30, lin), 'cosine stays higher early');
  const floor = { ...cos, minLr: 1e-4 };
  assert.ok(Math.abs(lrAt(100, floor) - 1e-4) < 1e-15);
  assert.ok(Math.abs(lrAt(55, floor) - 5.5e-4) < 1e-12);
  assert.equal(lrAt(77, { ...base, schedule: 'constant' }), 1e-3);
});
