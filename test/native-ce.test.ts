/**
 * The native fused lm_head + cross-entropy (src/backend/native-ce.ts, reached through
 * linearCrossEntropy on a frozen FloatLinear head) against the tfjs reference path of the same
 * function with the native kernels switched off: loss and dh, weighted and unweighted, odd sizes that
 * cut the addon's 128-row pieces and the 8-wide exp, logits large enough to need the max shift; the
 * forward alone (no gradient recorded) computes no dh; no tensor leaks. Skipped without the addon (a
 * failure under CLINILORA_REQUIRE_NATIVE=1).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { setNativeEnabled, nativeStatus } from '../src/backend/native.ts';
import { nativeLinearCrossEntropy } from '../src/backend/native-ce.ts';
import { linearCrossEntropy } from '../src/kernels/cross-entropy.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import { Rng } from '../src/util/random.ts';
import { nativeSkipReason } from './native-helpers.ts';

let skip: string | false = false;
before(async () => {
  skip = await nativeSkipReason();
});

const rng = new Rng(7).split('native-ce');

function lossAndGrad(h: tf.Tensor2D, head: FloatLinear, targets: Int32Array, weights?: Float32Array): { loss: number; dh: Float32Array } {
  const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => linearCrossEntropy(x as tf.Tensor2D, head, targets, weights ? { weights } : {}))([h]);
  const out = { loss: value.dataSync()[0]!, dh: grads[0]!.dataSync() as Float32Array };
  value.dispose();
  grads[0]!.dispose();
  return out;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

for (const [n, D, V, scaleW, weighted] of [
  [1, 8, 13, 0.5, false],
  [131, 32, 1003, 0.5, true], // two 128-row pieces and a remainder; V not a multiple of 8
  [300, 64, 4099, 4, false], // logits in the tens: the max shift matters
] as const) {
  test(`native fused cross-entropy = tfjs reference: n ${n}, D ${D}, V ${V}${weighted ? ', weighted rows' : ''}`, (t) => {
    if (skip) return t.skip(skip);
    const before = tf.memory().numTensors;
    const head = new FloatLinear(rng.fillNormal(new Float32Array(V * D), scaleW), V, D);
    const h = tf.tensor2d(rng.fillNormal(new Float32Array(n * D), 1), [n, D]);
    const targets = Int32Array.from({ length: n }, () => rng.int(V));
    const weights = weighted ? Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 0.5 + rng.uniform())) : undefined;
    try {
      setNativeEnabled(false);
      const ref = lossAndGrad(h, head, targets, weights);
      setNativeEnabled(true);
      const calls = nativeStatus().calls.native;
      const got = lossAndGrad(h, head, targets, weights);
      assert.ok(Number.isFinite(ref.loss) && ref.loss > 0);
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${got.loss} vs reference ${ref.loss}`);
      assert.ok(maxRelDiff(got.dh, ref.dh) < 1e-4, `dh differs by ${maxRelDiff(got.dh, ref.dh)} (relative to its largest entry)`);
      // The native run used no BatchMatMul: the whole head went through the fused kernel.
      assert.equal(nativeStatus().calls.native, calls);
      if (weighted) {
        // Rows of weight 0 get no gradient.
        for (let i = 0; i < n; i += 5) assert.ok(got.dh.subarray(i * D, (i + 1) * D).every((x) => x === 0), `row ${i}`);
      }
    } finally {
      setNativeEnabled(true);
      h.dispose();
      head.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  });
}

test('native fused cross-entropy: outside a gradient scope it makes no dh, and the loss is the same', (t) => {
  if (skip) return t.skip(skip);
  const D = 16;
  const V = 257;
  const n = 40;
  const head = new FloatLinear(rng.fillNormal(new Float32Array(V * D), 1), V, D);
  const h = tf.tensor2d(rng.fillNormal(new Float32Array(n * D), 1), [n, D]);
  const targets = Int32Array.from({ length: n }, () => rng.int(V));
  try {
    const plain = tf.tidy(() => linearCrossEntropy(h, head, targets).dataSync()[0]!);
    const withGrad = lossAndGrad(h, head, targets).loss;
    assert.equal(plain, withGrad);
    const direct = nativeLinearCrossEntropy(h, head.wt, targets, new Float32Array(n).fill(1), 1 / n, false)!;
    assert.equal(direct.dh, undefined);
    assert.deepEqual(direct.nll.shape, [n]);
    direct.nll.dispose();
    assert.throws(() => nativeLinearCrossEntropy(h, head.wt, targets.subarray(1), new Float32Array(n), 1, false), /1 targets|39 targets/);
  } finally {
    h.dispose();
    head.dispose();
  }
});
