/**
 * LoraLinear over every base kind (float, int8, NF4), table-driven as PEFT's test_custom_models:
 * a fresh adapter reproduces the base exactly, gradients (x, A, B) match central differences, merge ≈
 * unmerged, merge is idempotent, unmerge restores the base exactly, only adapter parameters train,
 * dropout is deterministic for a seed, safe merge rejects non-finite results, no tensor leaks.
 * The cpu backend runs everything; wasm runs the key checks.
 *
 * Finite differences: central, eps = 0.1, tolerance 1e-3·(1 + |g|). The LoRA branch is linear in each
 * of x, A and B separately and the bases are linear in x, so central differences carry no truncation
 * error; eps only trades against float32 rounding of the outputs (~1e-6 here / 0.2 ≈ 1e-5).
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import { NF4Linear } from '../src/kernels/nf4-linear.ts';
import { Int8Linear } from '../src/kernels/int8-linear.ts';
import type { Linear } from '../src/kernels/linear.ts';
import { LoraLinear, makeLoraDelta } from '../src/model/lora/layer.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';

const IN = 64;
const OUT = 48;
const N = 4;
const W = new Rng(1).fillNormal(new Float32Array(OUT * IN), 0.05);
const X = new Rng(2).fillNormal(new Float32Array(N * IN), 1);

function randn(n: number, seed: number, std = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), std);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function run(l: Linear, x: Float32Array = X, n = N): Float32Array {
  return tf.tidy(() => l.apply(tf.tensor2d(x, [n, l.inFeatures])).dataSync() as Float32Array);
}

/** Base kinds; `linearInX`: the base output is linear in x (no int8 activation rounding), so FD applies. */
const BASES: Array<{ kind: string; make: (w: Float32Array) => Linear; linearInX: boolean }> = [
  { kind: 'float', make: (w) => new FloatLinear(w, OUT, IN), linearInX: true },
  { kind: 'int8', make: (w) => Int8Linear.fromFloat(w, OUT, IN, { threshold: 0 }), linearInX: true },
  { kind: 'int8+outliers', make: (w) => Int8Linear.fromFloat(w, OUT, IN, { threshold: 2 }), linearInX: false },
  { kind: 'nf4', make: (w) => NF4Linear.fromFloat(w, OUT, IN), linearInX: true },
  { kind: 'nf4+dq', make: (w) => NF4Linear.fromFloat(w, OUT, IN, { doubleQuant: true }), linearInX: true },
];

function lora(base: Linear, opts: { seed?: number; init?: boolean | string; dropout?: number; r?: number; alpha?: number } = {}): LoraLinear {
  return new LoraLinear(base, {
    r: opts.r ?? 4,
    loraAlpha: opts.alpha ?? 8,
    loraDropout: opts.dropout ?? 0,
    initLoraWeights: opts.init ?? true,
    rng: new Rng(opts.seed ?? 7),
    name: 'model.layers.0.self_attn.qkv_proj',
  });
}

/** Central-difference check of d(Σ f ⊙ R)/d input for the inputs in `which` (see the file comment). */
function fdCheck(f: (ts: tf.Tensor[]) => tf.Tensor, values: Float32Array[], shapes: number[][], which: number[], label: string): void {
  const eps = 0.1;
  const outShape = tf.tidy(() => f(values.map((v, i) => tf.tensor(v, shapes[i]))).shape);
  const R = randn(outShape.reduce((a, b) => a * b, 1), 99);
  const loss = (vals: Float32Array[]): number => {
    const d = tf.tidy(() => f(vals.map((v, i) => tf.tensor(v, shapes[i]))).dataSync());
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * R[i]!;
    return s;
  };
  const grads = tf.tidy(() => {
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(xs), tf.tensor(R, outShape))))(values.map((v, i) => tf.tensor(v, shapes[i])));
    return g.map((t) => t.dataSync().slice());
  });
  for (const i of which) {
    for (let j = 0; j < values[i]!.length; j++) {
      const plus = values.map((v) => v.slice());
      const minus = values.map((v) => v.slice());
      plus[i]![j] = plus[i]![j]! + eps;
      minus[i]![j] = minus[i]![j]! - eps;
      const num = (loss(plus) - loss(minus)) / (2 * eps);
      const ana = grads[i]![j]!;
      assert.ok(Math.abs(num - ana) <= 1e-3 * (1 + Math.abs(ana)), `${label}: input${i}[${j}] analytic ${ana} vs numeric ${num}`);
    }
  }
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`LoraLinear on ${backend}`, () => {
    before(async () => {
      await initBackend({ backend });
    });

    for (const { kind, make, linearInX } of BASES) {
      test(`${kind}: a fresh adapter (B = 0) reproduces the base exactly`, () => {
        const base = make(W);
        const yBase = run(base);
        const l = lora(base);
        assert.deepEqual(Array.from(run(l)), Array.from(yBase));
        l.training = true;
        assert.deepEqual(Array.from(run(l)), Array.from(yBase), 'also in training mode');
        l.dispose();
      });

      if (backend === 'wasm' && kind !== 'nf4') continue;

      if (linearInX) {
        test(`${kind}: layer gradient w.r.t. x matches central differences`, () => {
          const l = lora(make(W), { init: false, r: 2 });
          fdCheck(([x]) => l.apply(x as tf.Tensor2D), [randn(2 * IN, 5)], [[2, IN]], [0], `${kind} dx`);
          l.dispose();
        });
      }

      test(`${kind}: merge ≈ unmerged, merge idempotent, unmerge exact, mergeAndUnload keeps the kind`, (t) => {
        const base = make(W);
        const l = lora(base, { init: false });
        const yBase = run(base);
        const y = run(l);
        const wEff = tf.tidy(() => l.weight().dataSync().slice()); // W + B·A·s in float32
        const warnings: string[] = [];
        l.merge({ onWarning: (m) => warnings.push(m) });
        assert.ok(l.merged, 'merged');
        assert.equal(l.base.kind, base.kind);
        const yMerged = run(l);
        // Requantizing W' = W + B·A·s moves each output by at most Σ_k |x_k| · max |W' − dequant(W')|;
        // with int8 activations (outlier threshold) add the activation rounding: Σ_k (rowmax|x|/254) · max|W'|.
        const wErr = maxAbsDiff(tf.tidy(() => l.base.weight().dataSync()), wEff);
        let bound = 1e-5;
        for (let i = 0; i < N; i++) {
          const row = Array.from(X.subarray(i * IN, (i + 1) * IN), Math.abs);
          let b = row.reduce((s, v) => s + v, 0) * wErr;
          if (!linearInX) b += 2 * IN * (Math.max(...row) / 254) * Math.max(...Array.from(wEff, Math.abs));
          bound = Math.max(bound, b + 1e-5);
        }
        const dMerge = maxAbsDiff(yMerged, y);
        assert.ok(dMerge <= bound, `${kind}: merged vs unmerged max diff ${dMerge} > bound ${bound}`);
        t.diagnostic(`${kind}: merged vs unmerged max |Δy| = ${dMerge.toExponential(2)} (bound ${bound.toExponential(2)}; adapter moves y by ${maxAbsDiff(y, yBase).toExponential(2)})`);
        assert.ok(maxAbsDiff(y, yBase) > 0.1, 'the adapter changes the output');
        if (kind !== 'float') assert.ok(warnings.some((m) => /rounds/.test(m)), 'rounding warning');
        l.merge({ onWarning: (m) => warnings.push(m) });
        assert.ok(warnings.some((m) => /already merged/.test(m)), 'second merge warns');
        assert.deepEqual(Array.from(run(l)), Array.from(yMerged), 'merge is idempotent');
        l.unmerge();
        assert.equal(l.base, base, 'the original base object is back');
        assert.deepEqual(Array.from(run(l)), Array.from(y), 'unmerge restores the output exactly');
        const merged = l.mergeAndUnload({ onWarning: () => {} });
        assert.equal(merged.kind, base.kind);
        assert.deepEqual(Array.from(run(merged)), Array.from(yMerged));
        assert.throws(() => run(l), (e: unknown) => e instanceof CliniloraError && /unloaded/.test(e.message));
        merged.dispose();
      });
    }

    test('LoRA op gradient w.r.t. x, A and B matches central differences', () => {
      const op = makeLoraDelta(1.5);
      fdCheck(([x, a, b]) => op(x!, a!, b!), [randn(3 * 10, 1), randn(2 * 10, 2), randn(7 * 2, 3)], [[3, 10], [2, 10], [7, 2]], [0, 1, 2], 'lora op');
    });

    test('tf.variableGrads sees A and B (and nothing of a frozen base); only adapter params change', () => {
      for (const { kind, make } of BASES.filter((b) => b.kind !== 'int8+outliers')) {
        const base = make(W);
        const wBefore = tf.tidy(() => base.weight().dataSync().slice());
        const l = lora(base, { init: false });
        l.training = true;
        const aBefore = l.loraA.dataSync().slice();
        const bBefore = l.loraB.dataSync().slice();
        const opt = tf.train.sgd(0.1);
        for (let s = 0; s < 2; s++) {
          const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(l.apply(tf.tensor2d(X, [N, IN])))) as tf.Scalar);
          assert.deepEqual(Object.keys(grads).sort(), [l.loraA.name, l.loraB.name].sort(), `${kind}: gradients only for A and B`);
          opt.applyGradients(grads);
          value.dispose();
          for (const g of Object.values(grads)) g.dispose();
        }
        opt.dispose();
        assert.ok(maxAbsDiff(l.loraA.dataSync(), aBefore) > 0, `${kind}: A trained`);
        assert.ok(maxAbsDiff(l.loraB.dataSync(), bBefore) > 0, `${kind}: B trained`);
        const wAfter = tf.tidy(() => l.base.weight().dataSync());
        assert.deepEqual(Array.from(wAfter), Array.from(wBefore), `${kind}: base unchanged`);
        l.dispose();
      }
    });

    test('dropout is deterministic for a seed, differs across seeds, off in eval mode', () => {
      const make = (seed: number): LoraLinear => {
        const l = lora(new FloatLinear(W, OUT, IN), { init: false, dropout: 0.3, seed });
        l.training = true;
        return l;
      };
      const a = make(11);
      const b = make(11);
      const c = make(12);
      const ya1 = run(a);
      const ya2 = run(a);
      assert.deepEqual(Array.from(run(b)), Array.from(ya1), 'same seed, same first mask');
      assert.deepEqual(Array.from(run(b)), Array.from(ya2), 'same seed, same second mask');
      assert.ok(maxAbsDiff(ya1, ya2) > 0, 'the stream advances');
      // Same A and B but another dropout stream: only the masks differ.
      c.setLoraWeights(a.loraA.dataSync() as Float32Array, a.loraB.dataSync() as Float32Array);
      c.setDropoutState(new Rng(12).split('dropout').state());
      assert.ok(maxAbsDiff(run(c), ya1) > 0, 'another seed gives another mask');
      a.training = false;
      const noDrop = lora(new FloatLinear(W, OUT, IN), { init: false, dropout: 0, seed: 11 });
      assert.deepEqual(Array.from(run(a)), Array.from(run(noDrop)), 'eval mode has no dropout');
      // A saved stream state replays the masks.
      b.training = true;
      const s = b.dropoutState();
      const y1 = run(b);
      b.setDropoutState(s);
      assert.deepEqual(Array.from(run(b)), Array.from(y1), 'dropout state restores');
      for (const l of [a, b, c, noDrop]) l.dispose();
    });

    test('init: A ~ U(±1/√in) (kaiming-uniform, a = √5), B = 0; scaling = alpha/r or alpha/√r', () => {
      const l = lora(new FloatLinear(W, OUT, IN), { r: 8, alpha: 16 });
      const a = l.loraA.dataSync();
      const bound = 1 / Math.sqrt(IN);
      assert.ok(a.every((v) => Math.abs(v) <= bound), 'A within the bound');
      assert.ok(Math.max(...Array.from(a, Math.abs)) > 0.9 * bound, 'A fills the range');
      assert.ok(l.loraB.dataSync().every((v) => v === 0), 'B zero');
      assert.equal(l.scaling, 2);
      const rs = new LoraLinear(new FloatLinear(W, OUT, IN), { r: 16, loraAlpha: 8, useRslora: true, rng: new Rng(1) });
      assert.equal(rs.scaling, 2);
      assert.deepEqual(l.loraA.shape, [8, IN]);
      assert.deepEqual(l.loraB.shape, [OUT, 8]);
      assert.equal(l.bytes(), l.base.bytes() + 4 * 8 * (IN + OUT));
      l.dispose();
      rs.dispose();
    });

    test('safe merge rejects non-finite results and leaves the layer unmerged', () => {
      const l = lora(NF4Linear.fromFloat(W, OUT, IN), { init: false });
      const a = new Float32Array(4 * IN).fill(1e30);
      const b = new Float32Array(OUT * 4).fill(1e30);
      l.setLoraWeights(a, b);
      assert.throws(() => l.merge({ onWarning: () => {} }), (e: unknown) => e instanceof CliniloraError && /non-finite/.test(e.message) && /qkv_proj/.test(e.message));
      assert.equal(l.merged, false);
      assert.throws(() => l.setLoraWeights(new Float32Array(3), b), (e: unknown) => e instanceof CliniloraError && e.code === 'E_SHAPE');
      l.dispose();
    });

    test('no tensor leaks over 20 training steps (forward + backward + update)', () => {
      const layers = [lora(NF4Linear.fromFloat(W, OUT, IN), { dropout: 0.1 }), lora(Int8Linear.fromFloat(W, OUT, IN, { threshold: 2 })), lora(new FloatLinear(W, OUT, IN))];
      for (const l of layers) l.training = true;
      const x = tf.tensor2d(X, [N, IN]);
      const opt = tf.train.adam(1e-3);
      const step = (): void => {
        for (const l of layers) {
          const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(l.apply(x))) as tf.Scalar, l.trainableVariables());
          opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
          value.dispose();
          for (const g of Object.values(grads)) g.dispose();
        }
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) step();
      assert.equal(tf.memory().numTensors, before);
      x.dispose();
      opt.dispose();
      for (const l of layers) l.dispose();
    });
  });
}
