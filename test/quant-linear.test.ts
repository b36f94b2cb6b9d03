/**
 * Quantized linear layers on tensors, on the cpu and wasm backends: forward against a float64 reference
 * of x · dequant(W)ᵀ and against the float layer (max abs diff stated), LLM.int8 outlier decomposition
 * against an independent plain-JS reference, finite-difference gradient checks, bytes, no leaks.
 *
 * Finite differences: central, L = Σ y ⊙ R (R fixed, L summed in float64), eps = 0.1, tolerance
 * 1e-3·(1 + |g|). Every checked function is linear in the perturbed input (x · Wᵀ with W frozen, a · b
 * in each factor), so central differences have no truncation error at any eps; a large eps keeps the
 * float32 rounding of y (~1e-7 relative, ~1e-6 absolute here) divided by 2·eps near 1e-5. A wrong
 * gradient (a missing transpose or factor) is off by O(0.1–1).
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { NF4Linear } from '../src/kernels/nf4-linear.ts';
import { Int8Linear, K_CHUNK } from '../src/kernels/int8-linear.ts';
import { FloatLinear, matMulNN } from '../src/kernels/float-linear.ts';
import { quantizeLinear } from '../src/kernels/quant-linear.ts';
import { dequantizeNF4 } from '../src/kernels/nf4.ts';
import { dequantizeInt8 } from '../src/kernels/int8.ts';
import type { Linear } from '../src/kernels/linear.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';

function randn(n: number, seed: number, std = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), std);
}

/** y = x · Wᵀ in float64; x [N, K], w [M, K]. */
function refMatmulT(x: ArrayLike<number>, w: ArrayLike<number>, N: number, K: number, M: number): Float64Array {
  const y = new Float64Array(N * M);
  for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[i * K + k]! * w[j * K + k]!;
    y[i * M + j] = s;
  }
  return y;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Analytic gradients of L = Σ f(inputs) ⊙ R versus central differences, for the inputs listed in `which`. */
function fdCheck(f: (ts: tf.Tensor[]) => tf.Tensor, values: Float32Array[], shapes: number[][], which: number[], label: string): void {
  const eps = 0.1;
  const outShape = tf.tidy(() => f(values.map((v, i) => tf.tensor(v, shapes[i]))).shape);
  const R = randn(outShape.reduce((a, b) => a * b, 1), 99);
  const loss = (vals: Float32Array[]): number => {
    const y = tf.tidy(() => f(vals.map((v, i) => tf.tensor(v, shapes[i]))));
    const d = y.dataSync();
    y.dispose();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * R[i]!;
    return s;
  };
  const grads = tf.tidy(() => {
    const ts = values.map((v, i) => tf.tensor(v, shapes[i]));
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(xs), tf.tensor(R, outShape))))(ts);
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
      assert.ok(Math.abs(num - ana) <= 1e-3 * (1 + Math.abs(ana)), `${label}: d/d input${i}[${j}] analytic ${ana} vs numeric ${num}`);
    }
  }
}

/** Independent LLM.int8 reference (bitsandbytes semantics) in plain JS, float64 sums. */
function llmInt8Reference(x: Float32Array, N: number, K: number, wq: Int8Array, scb: Float32Array, M: number, threshold: number): Float64Array {
  const f = Math.fround;
  const outlierCol = new Array<boolean>(K).fill(false);
  for (let i = 0; i < N; i++) for (let k = 0; k < K; k++) if (Math.abs(x[i * K + k]!) >= threshold) outlierCol[k] = true;
  const y = new Float64Array(N * M);
  for (let i = 0; i < N; i++) {
    let rs = 0; // row absmax with outlier ENTRIES zeroed
    for (let k = 0; k < K; k++) {
      const v = Math.abs(x[i * K + k]!);
      if (v < threshold) rs = Math.max(rs, v);
    }
    const scale = rs > 0 ? f(127 / rs) : 0;
    const xq = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      if (outlierCol[k]) continue;
      const t = f(x[i * K + k]! * scale);
      const r = Math.round(t);
      xq[k] = r - t === 0.5 && r % 2 !== 0 ? r - 1 : r;
    }
    for (let j = 0; j < M; j++) {
      let acc = 0;
      let outl = 0;
      for (let k = 0; k < K; k++) {
        acc += xq[k]! * wq[j * K + k]!;
        if (outlierCol[k]) outl += x[i * K + k]! * ((wq[j * K + k]! * scb[j]!) / 127);
      }
      y[i * M + j] = (acc * rs * scb[j]!) / (127 * 127) + outl;
    }
  }
  return y;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`quantized linears on ${backend}`, () => {
    before(async () => {
      await initBackend({ backend });
    });

    const N = 5;
    const K = 96;
    const M = 24;
    const w = randn(M * K, 1, 0.05);
    const x = randn(N * K, 2, 1);
    const yFloat = refMatmulT(x, w, N, K, M);
    const cases: Array<[string, () => Linear, () => Float32Array]> = [
      ['nf4', () => NF4Linear.fromFloat(w, M, K), () => dequantizeNF4((NF4Linear.fromFloat(w, M, K)).q)],
      ['nf4 double-quant', () => NF4Linear.fromFloat(w, M, K, { doubleQuant: true }), () => dequantizeNF4(NF4Linear.fromFloat(w, M, K, { doubleQuant: true }).q)],
      ['int8 weight-only', () => Int8Linear.fromFloat(w, M, K, { threshold: 0 }), () => dequantizeInt8(Int8Linear.fromFloat(w, M, K).q)],
    ];

    for (const [name, make, deq] of cases) {
      test(`${name}: forward = x · dequant(W)ᵀ, and close to the float layer`, (t) => {
        const layer = make();
        const y = tf.tidy(() => layer.apply(tf.tensor2d(x, [N, K])).dataSync());
        const wd = deq();
        const yRef = refMatmulT(x, wd, N, K, M);
        const dRef = maxAbsDiff(y, yRef);
        assert.ok(dRef < 1e-5, `${name}: max |y − x·dequant(W)ᵀ| = ${dRef}`);
        // Distance to the float result is bounded by Σ_k |x_k| · max |W − dequant(W)|.
        const wErr = maxAbsDiff(w, wd);
        let xl1 = 0;
        for (let i = 0; i < N; i++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += Math.abs(x[i * K + k]!);
          xl1 = Math.max(xl1, s);
        }
        const dFloat = maxAbsDiff(y, yFloat);
        assert.ok(dFloat <= xl1 * wErr + 1e-5, `${name}: max |y − y_float| = ${dFloat} > bound ${xl1 * wErr}`);
        assert.ok(dFloat > 0, 'quantization changes the result');
        t.diagnostic(`${name}: max |y − x·dequant(W)ᵀ| = ${dRef.toExponential(2)}, max |y − y_float| = ${dFloat.toExponential(2)} (bound ${(xl1 * wErr).toExponential(2)}, |y_float| ≤ ${Math.max(...yFloat.map(Math.abs)).toFixed(2)})`);
        layer.dispose();
      });

      test(`${name}: gradient w.r.t. x matches central differences; applyTransposed = dy · dequant(W)`, () => {
        const layer = make();
        const xs = randn(3 * K, 7, 1);
        fdCheck(([t]) => layer.apply(t as tf.Tensor2D), [xs], [[3, K]], [0], name);
        const dy = randn(3 * M, 8);
        const got = tf.tidy(() => (layer as NF4Linear | Int8Linear).applyTransposed(tf.tensor2d(dy, [3, M])).dataSync());
        const wd = deq();
        const want = new Float64Array(3 * K);
        for (let i = 0; i < 3; i++) for (let k = 0; k < K; k++) for (let j = 0; j < M; j++) want[i * K + k] += dy[i * M + j]! * wd[j * K + k]!;
        assert.ok(maxAbsDiff(got, want) < 1e-5, 'applyTransposed');
      });
    }

    test('float linear: matMulNN gradient matches central differences for both inputs', () => {
      fdCheck(([a, b]) => matMulNN(a as tf.Tensor2D, b as tf.Tensor2D), [randn(12, 3), randn(20, 4)], [[3, 4], [4, 5]], [0, 1], 'matMulNN');
    });

    test('LLM.int8 with planted outlier columns matches an independent plain-JS reference', (t) => {
      const Kb = K_CHUNK + 200; // two K chunks
      const Mb = 16;
      const Nb = 6;
      const wb = randn(Mb * Kb, 11, 0.05);
      const xb = randn(Nb * Kb, 12, 1);
      // Plant outliers: column 3 in one row, column 700 in all rows, column K_CHUNK+5 exactly at the threshold.
      xb[2 * Kb + 3] = 9.5;
      for (let i = 0; i < Nb; i++) xb[i * Kb + 700] = -7 - i;
      xb[4 * Kb + K_CHUNK + 5] = 6;
      const layer = Int8Linear.fromFloat(wb, Mb, Kb, { threshold: 6 });
      const y = tf.tidy(() => layer.apply(tf.tensor2d(xb, [Nb, Kb])).dataSync());
      const ref = llmInt8Reference(xb, Nb, Kb, layer.q.data, layer.q.rowAbsmax, Mb, 6);
      let scale = 0;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      const d = maxAbsDiff(y, ref);
      assert.ok(d <= 1e-5 * scale, `max |y − reference| = ${d} (|y| up to ${scale})`);
      t.diagnostic(`LLM.int8 vs reference: max abs diff ${d.toExponential(2)} (|y| up to ${scale.toFixed(2)})`);
      // Ignoring the outliers (all columns int8) would be visibly different.
      const noSplit = llmInt8Reference(xb, Nb, Kb, layer.q.data, layer.q.rowAbsmax, Mb, Infinity);
      assert.ok(maxAbsDiff(noSplit, ref) > 100 * d, 'the outlier columns matter');
      // The input gradient is the straight-through dy · dequant(W) (bitsandbytes' backward).
      const dy = randn(Nb * Mb, 13);
      const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t as tf.Tensor2D), tf.tensor2d(dy, [Nb, Mb]))))(tf.tensor2d(xb, [Nb, Kb])).dataSync());
      const wd = dequantizeInt8(layer.q);
      let gd = 0;
      for (let i = 0; i < Nb; i++) for (let k = 0; k < Kb; k += 37) {
        let s = 0;
        for (let j = 0; j < Mb; j++) s += dy[i * Mb + j]! * wd[j * Kb + k]!;
        gd = Math.max(gd, Math.abs(s - g[i * Kb + k]!));
      }
      assert.ok(gd < 1e-5, `STE gradient diff ${gd}`);
    });

    test('int8 with threshold and no outliers ≈ weight-only int8 (activation rounding only)', () => {
      const a = Int8Linear.fromFloat(w, M, K, { threshold: 6 });
      const b = Int8Linear.fromFloat(w, M, K, { threshold: 0 });
      const xs = randn(N * K, 21, 0.5); // |x| < 6 everywhere
      const [ya, yb] = tf.tidy(() => [a.apply(tf.tensor2d(xs, [N, K])).dataSync(), b.apply(tf.tensor2d(xs, [N, K])).dataSync()]);
      const d = maxAbsDiff(ya, yb);
      assert.ok(d > 0 && d < 0.02, `int8-activation vs float-activation max diff ${d}`);
    });

    test('bytes(): about 0.5 byte a weight for NF4, 1 for int8, 4 for float', () => {
      const n = 64 * 64;
      const wb = randn(n, 5, 0.02);
      const nf4 = quantizeLinear(wb, 64, 64, { quant: 'nf4' });
      const nf4dq = quantizeLinear(wb, 64, 64, { quant: 'nf4', doubleQuant: true });
      const i8 = quantizeLinear(wb, 64, 64, { quant: 'int8' });
      const fl = quantizeLinear(wb, 64, 64, { quant: 'none' });
      assert.equal(nf4.kind, 'nf4');
      assert.equal(i8.kind, 'int8');
      assert.equal(fl.kind, 'float');
      assert.equal(nf4.bytes() / n, 0.5 + 4 / 64);
      assert.equal(nf4dq.bytes(), n / 2 + n / 64 + 4 + 4, 'codes + one byte a block + absmax2 + offset');
      assert.equal(i8.bytes() / n, 1 + 4 / 64);
      assert.equal(fl.bytes() / n, 4);
      assert.deepEqual([nf4, i8].map((l) => l.trainableVariables().length), [0, 0]);
      assert.throws(() => quantizeLinear(wb, 64, 64, { quant: 'fp4' as never }), (e: unknown) => e instanceof CliniloraError && /none \| int8 \| nf4/.test(e.message));
      assert.throws(() => quantizeLinear(wb, 32, 64, { quant: 'nf4', name: 'o_proj' }), (e: unknown) => e instanceof CliniloraError && /o_proj/.test(e.message));
      for (const l of [nf4, nf4dq, i8, fl]) l.dispose();
    });

    test('wrong input shape names the layer, expected and found', () => {
      const l = NF4Linear.fromFloat(w, M, K);
      assert.throws(() => tf.tidy(() => l.apply(tf.zeros([2, K + 1]) as tf.Tensor2D)), (e: unknown) => e instanceof CliniloraError && /NF4Linear/.test(e.message) && /\[N, 96\]/.test(e.message));
    });

    test('no tensor leaks over 20 forward/backward steps', () => {
      const layers: Linear[] = [
        NF4Linear.fromFloat(w, M, K, { doubleQuant: true }),
        Int8Linear.fromFloat(w, M, K, { threshold: 0 }),
        Int8Linear.fromFloat(w, M, K, { threshold: 1.5 }),
        new FloatLinear(w, M, K),
      ];
      const xt = tf.tensor2d(x, [N, K]);
      const step = (): void => {
        for (const l of layers) {
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(l.apply(t as tf.Tensor2D))))(xt);
          g.dispose();
        }
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) step();
      assert.equal(tf.memory().numTensors, before);
      xt.dispose();
      for (const l of layers) l.dispose();
    });
  });
}
