/**
 * Native weight-only int8 matmuls (src/backend/native-int8.ts) against the JS reference: dequantizeInt8
 * then a float matMul on the backend's own kernel. Forward (x·Wᵀ) and input gradient (dy·W), odd and
 * split-sized shapes, wasm and cpu; undefined when the native path is off. Skipped without the addon
 * (a failure under CLINILORA_REQUIRE_NATIVE=1).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { setNativeEnabled } from '../src/backend/native.ts';
import { int8MatMul, int8MatMulT } from '../src/backend/native-int8.ts';
import { dequantizeInt8, quantizeInt8 } from '../src/kernels/int8.ts';
import { Rng } from '../src/util/random.ts';
import { nativeSkipReason } from './native-helpers.ts';

let skip: string | false = false;
before(async () => {
  skip = await nativeSkipReason();
});

const rng = new Rng(31).split('native-int8');

function check(rows: number, out: number, inF: number): void {
  const q = quantizeInt8(rng.fillNormal(new Float32Array(out * inF), 0.3), [out, inF]);
  const x = tf.tensor2d(rng.fillUniform(new Float32Array(rows * inF), -1, 1), [rows, inF]);
  const dy = tf.tensor2d(rng.fillUniform(new Float32Array(rows * out), -1, 1), [rows, out]);
  const w = tf.tensor2d(dequantizeInt8(q), [out, inF]);
  try {
    setNativeEnabled(false);
    const refY = tf.matMul(x, tf.transpose(w)).dataSync();
    const refDx = tf.matMul(dy, w).dataSync();
    setNativeEnabled(true);
    const y = int8MatMulT(x, q)!;
    const dx = int8MatMul(dy, q)!;
    assert.deepEqual(y.shape, [rows, out]);
    assert.deepEqual(dx.shape, [rows, inF]);
    const cmp = (got: ArrayLike<number>, ref: ArrayLike<number>, k: number, what: string): void => {
      let d = 0;
      for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(got[i]! - ref[i]!));
      assert.ok(d <= 2e-6 * Math.max(1, k), `${what} [${rows}, ${out}, ${inF}]: off by ${d}`);
    };
    cmp(y.dataSync(), refY, inF, 'x·Wᵀ');
    cmp(dx.dataSync(), refDx, out, 'dy·W');
    tf.dispose([y, dx]);
  } finally {
    setNativeEnabled(true);
    tf.dispose([x, dy, w]);
  }
}

const SHAPES: Array<[number, number, number]> = [
  [1, 7, 5], // one row, odd sizes, one partial 64-row block
  [3, 130, 33], // three 64-row blocks, the last partial
  [200, 300, 70], // split over threads (rows for dy·W)
  [5, 1000, 260], // few rows: dy·W splits columns
];

test('int8MatMulT / int8MatMul = dequantize + float matmul (wasm)', (t) => {
  if (skip) return t.skip(skip);
  for (const [r, o, i] of SHAPES) check(r, o, i);
});

test('int8 native ops on the cpu backend', async (t) => {
  if (skip) return t.skip(skip);
  await initBackend({ backend: 'cpu' });
  try {
    for (const [r, o, i] of SHAPES.slice(0, 3)) check(r, o, i);
  } finally {
    await initBackend({ backend: 'wasm' });
  }
});

test('int8 ops: undefined when native is off, shape errors name the input, no leaks', (t) => {
  if (skip) return t.skip(skip);
  const q = quantizeInt8(rng.fillNormal(new Float32Array(8 * 4), 0.3), [8, 4]);
  const x = tf.zeros([2, 4]) as tf.Tensor2D;
  setNativeEnabled(false);
  assert.equal(int8MatMulT(x, q), undefined);
  setNativeEnabled(true);
  assert.throws(() => int8MatMul(x, q), /int8MatMul: input is float32 \[2,4\], expected float32 \[N, 8\]/);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) tf.tidy(() => void int8MatMulT(x, q));
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});
