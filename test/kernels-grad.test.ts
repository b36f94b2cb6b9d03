/**
 * Finite-difference checks of every custom gradient in the model kernels, on cpu and wasm, plus
 * forward values against naive JS.
 *
 * Method: L(θ) = Σ f(θ) ⊙ R with a fixed random R (summed in Float64 in JS), central differences
 * (L(θ + ε) − L(θ − ε)) / 2ε for every element of each small float32 input, ε = 1e-2.
 * Float32 evaluation noise is ~1e-6 / 2ε ≈ 1e-4 and the truncation error O(ε²); a wrong gradient is
 * off by O(1). Tolerance per element: |num − ana| ≤ 2e-3 + 1e-2·|ana|.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend, type BackendName } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { rmsNorm } from '../src/kernels/rmsnorm.ts';
import { ropeTables, applyRope } from '../src/kernels/rope.ts';
import { swiglu } from '../src/kernels/swiglu.ts';
import { attention } from '../src/kernels/attention.ts';
import { linearCrossEntropy, crossEntropyFromLogits } from '../src/kernels/cross-entropy.ts';
import { gatherRows, Embedding } from '../src/kernels/embedding.ts';
import { FloatLinear, matMulNN } from '../src/kernels/float-linear.ts';
import type { Linear } from '../src/kernels/linear.ts';
import { attentionBias } from '../src/model/mask.ts';

const EPS = 1e-2;
const ATOL = 2e-3;
const RTOL = 1e-2;

function randn(rng: Rng, n: number, std = 1): Float32Array {
  return rng.fillNormal(new Float32Array(n), std);
}

/**
 * Checks d/dθ of Σ f() ⊙ R for each variable in `vars` (trainable variables read by f).
 * Returns the analytic gradients for further checks.
 */
function fdCheck(what: string, f: () => tf.Tensor, vars: tf.Variable[], seed = 1): void {
  const y0 = tf.tidy(f);
  const R = randn(new Rng(seed), y0.size);
  const shape = y0.shape;
  y0.dispose();
  const L = (): number => {
    const y = tf.tidy(f);
    const d = y.dataSync();
    y.dispose();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * R[i]!;
    return s;
  };
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(f(), tf.tensor(R, shape))) as tf.Scalar, vars);
  for (const v of vars) {
    const g = grads[v.name]!.dataSync() as Float32Array;
    const x = v.dataSync().slice() as Float32Array;
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const probe = (delta: number) => {
        const xp = x.slice();
        xp[i]! += delta;
        v.assign(tf.tensor(xp, v.shape));
        return L();
      };
      const num = (probe(EPS) - probe(-EPS)) / (2 * EPS);
      const err = Math.abs(num - g[i]!);
      worst = Math.max(worst, err / (ATOL + RTOL * Math.abs(g[i]!)));
      assert.ok(err <= ATOL + RTOL * Math.abs(g[i]!), `${what}: d/d${v.name}[${i}] numeric ${num} vs analytic ${g[i]}`);
    }
    v.assign(tf.tensor(x, v.shape));
    assert.ok(g.some((a) => Math.abs(a) > 1e-3), `${what}: gradient for ${v.name} is not all ~0`);
  }
  tf.dispose(Object.values(grads));
}

let nextVar = 0;
function variable(data: Float32Array, shape: number[], name: string): tf.Variable {
  return tf.variable(tf.tensor(data, shape), true, `${name}_${nextVar++}`);
}

/** A frozen linear that is not a FloatLinear (as a quantized head would be). */
class PlainLinear implements Linear {
  readonly kind = 'plain';
  readonly w: tf.Tensor2D;
  constructor(data: Float32Array, readonly outFeatures: number, readonly inFeatures: number, withTranspose: boolean) {
    this.w = tf.tensor2d(data, [outFeatures, inFeatures]);
    if (withTranspose) (this as unknown as { applyTransposed: (dy: tf.Tensor2D) => tf.Tensor2D }).applyTransposed = (dy) => tf.matMul(dy, this.w);
  }
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(x, tf.transpose(this.w));
  }
  weight(): tf.Tensor2D {
    return tf.clone(this.w);
  }
  trainableVariables(): tf.Variable[] {
    return [];
  }
  bytes(): number {
    return this.w.size * 4;
  }
  dispose(): void {
    this.w.dispose();
  }
}

/** A trainable linear that is not a FloatLinear (like LoRA on lm_head): the unfused path. */
class VarLinear implements Linear {
  readonly kind = 'var';
  constructor(readonly wt: tf.Variable<tf.Rank.R2>, readonly outFeatures: number, readonly inFeatures: number) {}
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return matMulNN(x, this.wt);
  }
  weight(): tf.Tensor2D {
    return tf.transpose(this.wt);
  }
  trainableVariables(): tf.Variable[] {
    return [this.wt];
  }
  bytes(): number {
    return this.wt.size * 4;
  }
  dispose(): void {}
}

/** Naive mean cross-entropy of h W^T against targets, in Float64. */
function naiveCE(h: Float32Array, W: Float32Array, n: number, D: number, V: number, t: Int32Array, w?: Float32Array): number {
  let total = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const logits = Array.from({ length: V }, (_, v) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += h[i * D + d]! * W[v * D + d]!;
      return s;
    });
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((a, b) => a + Math.exp(b - m), 0));
    const wi = w?.[i] ?? 1;
    total += wi * (lse - logits[t[i]!]!);
    wsum += wi;
  }
  return total / wsum;
}

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  describe(`kernels on ${backend}`, () => {
    before(async () => {
      await initBackend({ backend });
    });

    test('rmsNorm: values, d/dx with a frozen weight, d/dx and d/dw with a trainable one', () => {
      const rng = new Rng(1);
      const x = variable(randn(rng, 3 * 8), [3, 8], 'x');
      const wData = randn(rng, 8, 0.3).map((v) => v + 1);
      const wFrozen = tf.tensor1d(wData);
      const y = rmsNorm(x as tf.Tensor2D, wFrozen, 1e-5).dataSync();
      const xd = x.dataSync();
      for (let r = 0; r < 3; r++) {
        let ss = 0;
        for (let d = 0; d < 8; d++) ss += xd[r * 8 + d]! ** 2;
        const rstd = 1 / Math.sqrt(ss / 8 + 1e-5);
        for (let d = 0; d < 8; d++) assert.ok(Math.abs(y[r * 8 + d]! - xd[r * 8 + d]! * rstd * wData[d]!) < 1e-5);
      }
      fdCheck('rmsNorm frozen w', () => rmsNorm(x as tf.Tensor2D, wFrozen, 1e-5), [x]);
      const w = variable(wData, [8], 'w');
      fdCheck('rmsNorm trainable w', () => rmsNorm(x as tf.Tensor2D, w as tf.Tensor1D, 1e-5), [x, w]);
      tf.dispose([x, w, wFrozen]);
    });

    test('rope: values as rotate_half, gradient', () => {
      const rng = new Rng(2);
      const [B, H, T, hd] = [2, 2, 3, 4];
      const x = variable(randn(rng, B * H * T * hd), [B, H, T, hd], 'x');
      const pos = Int32Array.from([0, 1, 2, 4, 7, 9]);
      const tables = ropeTables(pos, B, T, hd, 10000);
      const y = applyRope(x as tf.Tensor4D, tables).dataSync();
      const xd = x.dataSync();
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
        const o = ((b * H + h) * T + t) * hd;
        const p = pos[b * T + t]!;
        for (let i = 0; i < hd; i++) {
          const f = p / 10000 ** ((2 * (i % 2)) / hd);
          const rot = i < 2 ? -xd[o + i + 2]! : xd[o + i - 2]!;
          assert.ok(Math.abs(y[o + i]! - (xd[o + i]! * Math.cos(f) + rot * Math.sin(f))) < 1e-5, `rope [${b},${h},${t},${i}]`);
        }
      }
      fdCheck('rope', () => applyRope(x as tf.Tensor4D, tables), [x]);
      tf.dispose([x, tables.cos, tables.sinS]);
    });

    test('swiglu: values, gradient', () => {
      const rng = new Rng(3);
      const gu = variable(randn(rng, 3 * 8, 1.5), [3, 8], 'gu');
      const y = swiglu(gu as tf.Tensor2D).dataSync();
      const d = gu.dataSync();
      for (let r = 0; r < 3; r++) for (let i = 0; i < 4; i++) {
        const g = d[r * 8 + i]!;
        assert.ok(Math.abs(y[r * 4 + i]! - (g / (1 + Math.exp(-g))) * d[r * 8 + 4 + i]!) < 1e-5);
      }
      fdCheck('swiglu', () => swiglu(gu as tf.Tensor2D), [gu]);
      gu.dispose();
    });

    for (const impl of ['batched', 'grouped'] as const) test(`attention (${impl}) with GQA, padding, a cache-like past, and dropout: values and gradient`, () => {
      const rng = new Rng(4);
      const [B, H, KV, T, past, hd] = [2, 4, 2, 3, 2, 4];
      const S = past + T;
      const q = variable(randn(rng, B * H * T * hd), [B, H, T, hd], 'q');
      const k = variable(randn(rng, B * KV * S * hd), [B, KV, S, hd], 'k');
      const v = variable(randn(rng, B * KV * S * hd), [B, KV, S, hd], 'v');
      const keyMask = [Uint8Array.from([1, 1, 1, 1, 1]), Uint8Array.from([0, 1, 1, 1, 1])];
      const biasData = attentionBias(keyMask, T, past, null);
      const bias = tf.tensor4d(biasData, [B, 1, T, S]);
      const scale = 1 / Math.sqrt(hd);
      // Naive values: head h reads kv head ⌊h / 2⌋.
      const o = attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, { scale, bias, impl }).dataSync();
      const [qd, kd, vd] = [q.dataSync(), k.dataSync(), v.dataSync()];
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
        const kvh = Math.floor(h / 2);
        const js = [...Array(S).keys()].filter((j) => j <= past + i && keyMask[b]![j] === 1);
        const s = js.map((j) => {
          let a = 0;
          for (let d = 0; d < hd; d++) a += qd[((b * H + h) * T + i) * hd + d]! * kd[((b * KV + kvh) * S + j) * hd + d]!;
          return a * scale;
        });
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const Z = e.reduce((a2, c) => a2 + c, 0);
        for (let d = 0; d < hd; d++) {
          const want = js.reduce((acc, j, n) => acc + (e[n]! / Z) * vd[((b * KV + kvh) * S + j) * hd + d]!, 0);
          assert.ok(Math.abs(o[((b * H + h) * T + i) * hd + d]! - want) < 1e-5, `attention value [${b},${h},${i},${d}]`);
        }
      }
      fdCheck(`attention ${impl}`, () => attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, { scale, bias, impl }), [q, k, v]);
      const keepData = Float32Array.from({ length: B * H * T * S }, () => (rng.uniform() < 0.25 ? 0 : 1));
      const keep = tf.tensor4d(keepData, [B, H, T, S]);
      fdCheck(`attention ${impl} + dropout`, () => attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, { scale, bias, impl, dropout: { keep, rate: 0.25 } }), [q, k, v]);
      tf.dispose([q, k, v, bias, keep]);
    });

    test('fused linear cross-entropy: value, d/dh (frozen head), d/dh and d/dW (trainable head), chunking, weights', () => {
      const rng = new Rng(5);
      const [n, D, V] = [7, 6, 11];
      const hData = randn(rng, n * D);
      const wData = randn(rng, V * D, 0.7);
      const targets = Int32Array.from({ length: n }, () => rng.int(V));
      const h = variable(hData, [n, D], 'h');
      const frozen = new FloatLinear(wData, V, D);
      const want = naiveCE(hData, wData, n, D, V, targets);
      for (const chunkRows of [3, 100]) {
        const got = linearCrossEntropy(h as tf.Tensor2D, frozen, targets, { chunkRows }).dataSync()[0]!;
        assert.ok(Math.abs(got - want) < 1e-5, `chunk ${chunkRows}: ${got} vs ${want}`);
        fdCheck(`CE frozen head, chunk ${chunkRows}`, () => linearCrossEntropy(h as tf.Tensor2D, frozen, targets, { chunkRows }), [h]);
      }
      const weights = Float32Array.from({ length: n }, (_, i) => (i % 3) + 0.5);
      const gotW = linearCrossEntropy(h as tf.Tensor2D, frozen, targets, { chunkRows: 2, weights }).dataSync()[0]!;
      assert.ok(Math.abs(gotW - naiveCE(hData, wData, n, D, V, targets, weights)) < 1e-5, 'weighted');
      fdCheck('CE weighted', () => linearCrossEntropy(h as tf.Tensor2D, frozen, targets, { chunkRows: 2, weights }), [h]);
      const trainable = new FloatLinear(wData, V, D, { trainable: true });
      fdCheck('CE trainable head', () => linearCrossEntropy(h as tf.Tensor2D, trainable, targets, { chunkRows: 3 }), [h, trainable.wt]);
      // A frozen non-float head, with and without applyTransposed.
      for (const withT of [false, true]) {
        const plain = new PlainLinear(wData, V, D, withT);
        assert.ok(Math.abs(linearCrossEntropy(h as tf.Tensor2D, plain, targets, { chunkRows: 3 }).dataSync()[0]! - want) < 1e-5);
        fdCheck(`CE plain head (applyTransposed ${withT})`, () => linearCrossEntropy(h as tf.Tensor2D, plain, targets, { chunkRows: 3 }), [h]);
        plain.dispose();
      }
      // A trainable non-float head: the unfused path.
      const wt = variable(trainable.wt.dataSync() as Float32Array, [D, V], 'wt') as tf.Variable<tf.Rank.R2>;
      const varHead = new VarLinear(wt, V, D);
      assert.ok(Math.abs(linearCrossEntropy(h as tf.Tensor2D, varHead, targets, { chunkRows: 3 }).dataSync()[0]! - want) < 1e-5);
      fdCheck('CE unfused trainable head', () => linearCrossEntropy(h as tf.Tensor2D, varHead, targets, { chunkRows: 3 }), [h, wt]);
      tf.dispose([h, wt]);
      frozen.dispose();
      trainable.dispose();
    });

    test('cross-entropy from logits: value, gradient; bad targets are errors', () => {
      const rng = new Rng(6);
      const [n, V] = [5, 7];
      const data = randn(rng, n * V, 2);
      const logits = variable(data, [n, V], 'logits');
      const targets = Int32Array.from([0, 6, 3, 3, 1]);
      const eye = new Float32Array(V * V);
      for (let i = 0; i < V; i++) eye[i * V + i] = 1;
      const got = crossEntropyFromLogits(logits as tf.Tensor2D, targets).dataSync()[0]!;
      assert.ok(Math.abs(got - naiveCE(data, eye, n, V, V, targets)) < 1e-5);
      fdCheck('CE from logits', () => crossEntropyFromLogits(logits as tf.Tensor2D, targets), [logits]);
      assert.throws(() => crossEntropyFromLogits(logits as tf.Tensor2D, Int32Array.from([0, 7, 0, 0, 0])), /target 7 at row 1/);
      assert.throws(() => crossEntropyFromLogits(logits as tf.Tensor2D, Int32Array.from([0])), /1 targets for 5 rows/);
      logits.dispose();
    });

    test('gatherRows: values and scatter-add gradient with repeated ids; trainable Embedding', () => {
      const rng = new Rng(7);
      const x = variable(randn(rng, 5 * 3), [5, 3], 'x');
      const ids = Int32Array.from([1, 3, 1, 0, 1]);
      const y = gatherRows(x as tf.Tensor2D, ids).dataSync();
      const xd = x.dataSync();
      ids.forEach((id, i) => assert.deepEqual(Array.from(y.slice(i * 3, i * 3 + 3)), Array.from(xd.slice(id * 3, id * 3 + 3))));
      fdCheck('gatherRows', () => gatherRows(x as tf.Tensor2D, ids), [x]);
      const emb = new Embedding(randn(rng, 6 * 4), 6, 4, { trainable: true });
      const [table] = emb.trainableVariables();
      fdCheck('Embedding', () => emb.forward(ids), [table!]);
      // Row 2, 4, 5 are never used: zero gradient.
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(emb.forward(ids))) as tf.Scalar, [table!]);
      const g = grads[table!.name]!.dataSync();
      for (const r of [2, 4, 5]) for (let d = 0; d < 4; d++) assert.equal(g[r * 4 + d], 0);
      tf.dispose(Object.values(grads));
      x.dispose();
      emb.dispose();
    });
  });
}
