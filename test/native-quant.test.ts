/**
 * Native weight-only quantized matmuls (src/backend/native-quant.ts) against the JS reference: the JS
 * dequantizer, then a float matMul on the backend's own kernel. int8 and NF4 (plain and double-quantized
 * absmax, blocks of 64 and 128, rows that start inside a block and on an odd element), forward (x·Wᵀ,
 * including NF4's fused few-row path) and input gradient (dy·W), split-sized shapes, wasm and cpu;
 * the frozen layers' forward and gradient through them; undefined when the native path is off.
 * Skipped without the addon (a failure under CLINILORA_REQUIRE_NATIVE=1).
 */
import { test, before } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { nativeStatus, setNativeEnabled } from '../src/backend/native.ts';
import { int8MatMul, int8MatMulT, nf4MatMul, nf4MatMulT } from '../src/backend/native-quant.ts';
import { NATIVE_ISA_CAPS } from '../src/backend/native-addon.ts';
import { dequantizeInt8, quantizeInt8 } from '../src/kernels/int8.ts';
import { dequantizeNF4, quantizeNF4 } from '../src/kernels/nf4.ts';
import { Int8Linear } from '../src/kernels/int8-linear.ts';
import { NF4Linear } from '../src/kernels/nf4-linear.ts';
import { Rng } from '../src/util/random.ts';
import { nativeSkipReason } from './native-helpers.ts';

let skip: string | false = false;
before(async () => {
  skip = await nativeSkipReason();
});

const rng = new Rng(31).split('native-quant');

interface Kind {
  name: string;
  /** Packs a random [out, in] weight; returns the ops and the float reference weight. */
  make(out: number, inF: number): { t: (x: tf.Tensor2D) => tf.Tensor2D | undefined; n: (dy: tf.Tensor2D) => tf.Tensor2D | undefined; w: Float32Array };
}

const KINDS: Kind[] = [
  {
    name: 'int8',
    make(out, inF) {
      const q = quantizeInt8(rng.fillNormal(new Float32Array(out * inF), 0.3), [out, inF]);
      return { t: (x) => int8MatMulT(x, q), n: (dy) => int8MatMul(dy, q), w: dequantizeInt8(q) };
    },
  },
  ...[false, true].flatMap((doubleQuant) => [64, 128].map((blockSize): Kind => ({
    name: `nf4 block ${blockSize}${doubleQuant ? ' double-quant' : ''}`,
    make(out, inF) {
      const q = quantizeNF4(rng.fillNormal(new Float32Array(out * inF), 0.3), [out, inF], { doubleQuant, blockSize });
      return { t: (x) => nf4MatMulT(x, q), n: (dy) => nf4MatMul(dy, q), w: dequantizeNF4(q) };
    },
  }))),
];

function check(kind: Kind, rows: number, out: number, inF: number): void {
  const { t, n, w: wv } = kind.make(out, inF);
  const x = tf.tensor2d(rng.fillUniform(new Float32Array(rows * inF), -1, 1), [rows, inF]);
  const dy = tf.tensor2d(rng.fillUniform(new Float32Array(rows * out), -1, 1), [rows, out]);
  const w = tf.tensor2d(wv, [out, inF]);
  try {
    setNativeEnabled(false);
    const refY = tf.matMul(x, tf.transpose(w)).dataSync();
    const refDx = tf.matMul(dy, w).dataSync();
    setNativeEnabled(true);
    const y = t(x)!;
    const dx = n(dy)!;
    assert.deepEqual(y.shape, [rows, out]);
    assert.deepEqual(dx.shape, [rows, inF]);
    const cmp = (got: ArrayLike<number>, ref: ArrayLike<number>, k: number, what: string): void => {
      let d = 0;
      for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(got[i]! - ref[i]!));
      assert.ok(d <= 2e-6 * Math.max(1, k), `${kind.name} ${what} [${rows}, ${out}, ${inF}]: off by ${d}`);
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
  [1, 7, 5], // one row, odd sizes, one partial 64-row block (NF4: rows start mid-block and on odd elements)
  [3, 130, 33], // three 64-row blocks, the last partial
  [2, 70, 256], // NF4's fused few-row forward, split over threads
  [4, 9, 128], // fused, one thread
  [200, 300, 70], // split over threads (rows for dy·W)
  [5, 1000, 260], // few rows: dy·W splits columns
];

test('quantized native matmuls = dequantize + float matmul (wasm)', (t) => {
  if (skip) return t.skip(skip);
  for (const kind of KINDS) for (const [r, o, i] of SHAPES) check(kind, r, o, i);
});

test('quantized native matmuls on the cpu backend', async (t) => {
  if (skip) return t.skip(skip);
  await initBackend({ backend: 'cpu' });
  try {
    for (const kind of KINDS) for (const [r, o, i] of SHAPES.slice(0, 4)) check(kind, r, o, i);
  } finally {
    await initBackend({ backend: 'wasm' });
  }
});

test('frozen NF4 and int8 layers: native forward and input gradient match the dequantize path', (t) => {
  if (skip) return t.skip(skip);
  const [out, inF, rows] = [96, 192, 6];
  const w = rng.fillNormal(new Float32Array(out * inF), 0.05);
  const layers = [NF4Linear.fromFloat(w, out, inF, { doubleQuant: true }), Int8Linear.fromFloat(w, out, inF, { threshold: 0 })];
  const x = tf.tensor2d(rng.fillUniform(new Float32Array(rows * inF), -1, 1), [rows, inF]);
  const dy = tf.tensor2d(rng.fillUniform(new Float32Array(rows * out), -1, 1), [rows, out]);
  try {
    for (const layer of layers) {
      const grad = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(layer.apply(xi as tf.Tensor2D), dy)));
      const run = (): [Float32Array, Float32Array] =>
        tf.tidy(() => [layer.apply(x).dataSync() as Float32Array, grad(x).dataSync() as Float32Array]);
      setNativeEnabled(false);
      const [refY, refDx] = run();
      setNativeEnabled(true);
      const [y, dx] = run();
      let d = 0;
      for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i]! - refY[i]!));
      for (let i = 0; i < dx.length; i++) d = Math.max(d, Math.abs(dx[i]! - refDx[i]!));
      assert.ok(d < 1e-4, `${layer.kind}: native and dequantize paths differ by ${d}`);
      assert.ok(refY.some((v) => v !== 0) && refDx.some((v) => v !== 0), `${layer.kind}: the reference is all zero`);
    }
  } finally {
    setNativeEnabled(true);
    tf.dispose([x, dy]);
  }
});

test('quantized ops: undefined when native is off, shape errors name the input, no leaks', (t) => {
  if (skip) return t.skip(skip);
  const q = quantizeInt8(rng.fillNormal(new Float32Array(8 * 4), 0.3), [8, 4]);
  const q4 = quantizeNF4(rng.fillNormal(new Float32Array(8 * 64), 0.3), [8, 64]);
  const x = tf.zeros([2, 4]) as tf.Tensor2D;
  const x4 = tf.zeros([2, 64]) as tf.Tensor2D;
  setNativeEnabled(false);
  assert.equal(int8MatMulT(x, q), undefined);
  assert.equal(nf4MatMulT(x4, q4), undefined);
  setNativeEnabled(true);
  assert.throws(() => int8MatMul(x, q), /int8MatMul: input is float32 \[2,4\], expected float32 \[N, 8\]/);
  assert.throws(() => nf4MatMul(x4, q4), /nf4MatMul: input is float32 \[2,64\], expected float32 \[N, 8\]/);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) tf.tidy(() => void int8MatMulT(x, q));
  for (let i = 0; i < 3; i++) tf.tidy(() => void nf4MatMulT(x4, q4));
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, x4]);
});

const ISA_ORDER = ['scalar', 'avx2', 'avx512', 'avx512-vbmi'];

test('CLINILORA_NATIVE_ISA: any other value keeps the addon off and says what it expects', () => {
  const module = new URL('../src/backend/native-addon.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(module)}).then((m) => console.log(JSON.stringify(m.loadNativeAddon())))`;
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...env, CLINILORA_NATIVE_ISA: 'AVX2' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const load = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { ok: boolean; reason?: string };
  assert.equal(load.ok, false);
  assert.match(load.reason ?? '', /CLINILORA_NATIVE_ISA="AVX2": expected one of avx512, avx2, scalar/);
});

test('CLINILORA_NATIVE_ISA caps the hand-written kernels', (t) => {
  if (skip) return t.skip(skip);
  const cap = process.env.CLINILORA_NATIVE_ISA;
  const isa = nativeStatus().isa ?? 'missing';
  assert.ok(ISA_ORDER.includes(isa), `isa ${isa}`);
  if (cap !== undefined) assert.ok(ISA_ORDER.indexOf(isa) <= ISA_ORDER.indexOf(cap), `isa ${isa} above the cap ${cap}`);
});

// This machine's widest path ran above; the narrower ones (AVX-512 without VBMI: the AVX2 NF4 forward
// beside the AVX-512 int8 one; AVX2; the scalar decode) run in child processes with the cap set, the
// same tests. (On a CPU without AVX-512 the first two are the same path.)
for (const cap of NATIVE_ISA_CAPS) {
  test(`the same checks with CLINILORA_NATIVE_ISA=${cap}`, (t) => {
    if (skip) return t.skip(skip);
    if (process.env.CLINILORA_NATIVE_ISA !== undefined) return t.skip('already a capped child');
    const file = fileURLToPath(import.meta.url);
    // Without NODE_TEST_CONTEXT: under a test runner the child would report in the runner's binary form.
    const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { env: { ...env, CLINILORA_NATIVE_ISA: cap }, encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, `child tests failed with the cap ${cap}:\n${(r.stdout ?? '').split('\n').filter((l) => /not ok|error|off by|differ/.test(l)).slice(0, 20).join('\n')}`);
    assert.match(r.stdout, /# pass [1-9]/);
  });
}
