/**
 * The native matmul (src/backend/native.ts + native/): every product it takes must equal the backend's
 * own kernel (the reference, `setNativeEnabled(false)`) and a float64 product, for every transpose
 * combination, batch broadcasting, odd and degenerate shapes, the thread-split paths (rows, columns,
 * batch, inner dimension); gradients through it; a small Phi-3 LoRA step (loss and gradients). Runs on
 * wasm, and on cpu for a subset. Needs the addon built (`node native/build.mjs`); without it these
 * tests are skipped, unless CLINILORA_REQUIRE_NATIVE=1 (CI) makes that a failure.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { nativeStatus, planBatchMatMul, resetNativeCounters, setNativeEnabled } from '../src/backend/native.ts';
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { quantizeLinear } from '../src/kernels/quant-linear.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { attachLora, loraLayers, loraVariables, setLoraTraining } from '../src/model/lora/model.ts';
import { Rng } from '../src/util/random.ts';
import { testWeights } from './model-reference.ts';
import { nativeSkipReason } from './native-helpers.ts';

let skip: string | false = false;
before(async () => {
  skip = await nativeSkipReason();
});

const rng = new Rng(2024).split('native-test');
const rand = (shape: number[]): tf.Tensor => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((p, x) => p * x, 1)), -1, 1), shape);

/** float64 matmul with tfjs's batch mapping (b % batchA, b % batchB) for the cases the plan accepts. */
function reference64(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { shape: number[]; data: Float64Array } {
  const plan = planBatchMatMul(a.shape, b.shape, ta, tb)!;
  const av = a.dataSync();
  const bv = b.dataSync();
  const { m, n, k, batch, batchA, batchB } = plan;
  const out = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    const ao = (bi % batchA) * m * k;
    const bo = (bi % batchB) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += av[ao + (ta ? p * m + i : i * k + p)]! * bv[bo + (tb ? j * k + p : p * n + j)]!;
        out[bi * m * n + i * n + j] = s;
      }
    }
  }
  return { shape: plan.outShape, data: out };
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** Native and reference results of a·b, and the float64 product; asserts the native path ran. */
function compare(aShape: number[], bShape: number[], ta: boolean, tb: boolean): void {
  const a = rand(aShape);
  const b = rand(bShape);
  try {
    resetNativeCounters();
    setNativeEnabled(true);
    const nat = tf.matMul(a, b, ta, tb);
    const ran = nativeStatus().calls.native;
    setNativeEnabled(false);
    const ref = tf.matMul(a, b, ta, tb);
    setNativeEnabled(true);
    const r64 = reference64(a, b, ta, tb);
    const what = `${aShape}·${bShape} tA=${ta} tB=${tb}`;
    assert.equal(ran, 1, `${what}: native path not taken`);
    assert.deepEqual(nat.shape, ref.shape, what);
    assert.deepEqual(nat.shape, r64.shape, what);
    const k = ta ? aShape[aShape.length - 2]! : aShape[aShape.length - 1]!;
    // float32 sums of k products of values in [-1, 1]: error grows like √k · 2^-24 · |terms|.
    const tol = 4e-7 * Math.max(1, k);
    const nd = nat.dataSync();
    const rd = ref.dataSync();
    let dNat = 0;
    let dRef = 0;
    for (let i = 0; i < r64.data.length; i++) {
      dNat = Math.max(dNat, Math.abs(nd[i]! - r64.data[i]!));
      dRef = Math.max(dRef, Math.abs(rd[i]! - r64.data[i]!));
    }
    assert.ok(dNat <= tol, `${what}: native off by ${dNat} from float64 (tol ${tol}; the backend's own kernel: ${dRef})`);
    if (r64.data.length > 0) assert.ok(maxAbs(nd) > 0, `${what}: all zeros`);
    tf.dispose([nat, ref]);
  } finally {
    tf.dispose([a, b]);
    setNativeEnabled(true);
  }
}

const CASES: Array<[number[], number[]]> = [
  [[7, 13], [13, 5]], // odd
  [[1, 9], [9, 1]], // m = n = 1
  [[6, 1], [1, 4]], // k = 1 (outer product)
  [[130, 100], [100, 97]], // > 1M multiply-adds: row split over threads
  [[40, 100], [100, 300]], // n > m: column split
  [[3, 2000], [2000, 5]], // long inner dimension, single thread
  [[20, 8000], [8000, 24]], // long inner dimension over 1M multiply-adds: k split with partial sums
  [[3, 17, 11], [11, 9]], // batch × shared matrix
  [[17, 11], [5, 11, 9]], // shared matrix × batch
  [[2, 3, 8, 6], [2, 3, 6, 7]], // equal rank-4 batches
  [[3, 64, 40], [3, 40, 80]], // odd batch count (split inside each product)
  [[8, 32, 20], [8, 20, 32]], // batch split over threads
  [[2, 3, 8, 6], [6, 7]],
];

test('native BatchMatMul = float64 product, for every transpose combination, broadcast and odd shape (wasm)', (t) => {
  if (skip) return t.skip(skip);
  for (const [as, bs] of CASES) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const sa = ta ? [...as.slice(0, -2), as[as.length - 1]!, as[as.length - 2]!] : as;
        const sb = tb ? [...bs.slice(0, -2), bs[bs.length - 1]!, bs[bs.length - 2]!] : bs;
        compare(sa, sb, ta, tb);
      }
    }
  }
});

test('planBatchMatMul: the shapes tfjs computes; odd broadcasts and bad shapes left to tfjs', () => {
  assert.deepEqual(planBatchMatMul([2, 3, 4, 5], [5, 6], false, false), { batchA: 6, batchB: 1, batch: 6, m: 4, n: 6, k: 5, outShape: [2, 3, 4, 6] });
  assert.deepEqual(planBatchMatMul([5, 4], [3, 6, 5], true, true), { batchA: 1, batchB: 3, batch: 3, m: 4, n: 6, k: 5, outShape: [3, 4, 6] });
  assert.equal(planBatchMatMul([4, 5], [6, 7], false, false), undefined); // inner dims differ
  assert.equal(planBatchMatMul([2, 1, 4, 5], [1, 3, 5, 6], false, false), undefined); // true broadcast tfjs maps by modulo
  assert.equal(planBatchMatMul([2, 4, 5], [3, 5, 6], false, false), undefined); // incompatible batches
  assert.equal(planBatchMatMul([5], [5, 6], false, false), undefined);
});

test('a broadcast the native path does not take gives exactly the reference result', (t) => {
  if (skip) return t.skip(skip);
  const a = rand([2, 1, 4, 5]);
  const b = rand([1, 3, 5, 6]);
  resetNativeCounters();
  const nat = tf.matMul(a, b);
  assert.equal(nativeStatus().calls.native, 0);
  assert.ok(nativeStatus().calls.fallback >= 1);
  setNativeEnabled(false);
  const ref = tf.matMul(a, b);
  setNativeEnabled(true);
  assert.deepEqual(Array.from(nat.dataSync()), Array.from(ref.dataSync()));
  tf.dispose([a, b, nat, ref]);
});

test('gradients through native matmuls match the reference (all transpose flags, batched)', (t) => {
  if (skip) return t.skip(skip);
  for (const [as, bs, ta, tb] of [
    [[9, 6], [6, 11], false, false],
    [[6, 9], [11, 6], true, true],
    [[2, 9, 6], [2, 11, 6], false, true],
    [[64, 70], [64, 300], true, false],
  ] as Array<[number[], number[], boolean, boolean]>) {
    const a = rand(as);
    const b = rand(bs);
    const out = tf.tidy(() => tf.matMul(a, b, ta, tb).shape);
    const w = rand(out);
    const f = (x: tf.Tensor, y: tf.Tensor): tf.Tensor => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w));
    const run = (on: boolean): Float32Array[] => {
      setNativeEnabled(on);
      const g = tf.grads(f)([a, b]);
      const d = g.map((x) => x.dataSync() as Float32Array);
      tf.dispose(g);
      return d;
    };
    const nat = run(true);
    const ref = run(false);
    setNativeEnabled(true);
    nat.forEach((g, i) => {
      let d = 0;
      for (let j = 0; j < g.length; j++) d = Math.max(d, Math.abs(g[j]! - ref[i]![j]!));
      assert.ok(d <= 1e-5 * Math.max(1, maxAbs(ref[i]!)), `${as}·${bs} grad ${i}: off by ${d}`);
    });
    tf.dispose([a, b, w]);
  }
});

test('native matmul leaks no tensors and no wasm memory over a loop', (t) => {
  if (skip) return t.skip(skip);
  const a = rand([64, 48]);
  const b = rand([48, 80]);
  const counts: string[] = [];
  for (let i = 0; i < 5; i++) {
    tf.tidy(() => {
      tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, true, false)))([tf.transpose(a), b]);
    });
    counts.push(`${tf.memory().numTensors} tensors, ${tf.memory().numBytes} bytes`);
  }
  assert.deepEqual(counts, new Array(5).fill(counts[0]));
  tf.dispose([a, b]);
});

/** A small Phi-3 whose matmuls cover the split paths: lm_head 600 × 64 (row split; dh splits k). */
const cfg: PhiConfig = {
  ...getPreset('phi3-nano'),
  vocabSize: 600,
  hiddenSize: 64,
  intermediateSize: 128,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 4,
};

function loraStep(quant: 'none' | 'int8', dropout: number): void {
  const w = testWeights(cfg, 77, 0.2);
  const m = Phi3ForCausalLM.fromWeights(cfg, (n) => w.get(n)!, quant === 'none' ? {} : { linearFactory: (name, wt, o, i) => quantizeLinear(wt, o, i, { quant, name }) });
  try {
    attachLora(m, defineLoraConfig({ r: 8, loraAlpha: 16, loraDropout: dropout, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] }), new Rng(3));
    setLoraTraining(m, true);
    const vars = loraVariables(m);
    // lora_B starts at zero (then the A gradients are zero): give every adapter tensor values.
    const init = new Rng(9);
    for (const v of vars) v.assign(tf.tensor(init.fillNormal(new Float32Array(v.size), 0.05), v.shape));
    const ids = Array.from({ length: 3 }, (_, r) => Array.from({ length: 24 }, (_, i) => (r * 131 + i * 37 + 5) % cfg.vocabSize));
    const labels = ids.map((row) => row.map((_, i) => (i >= 4 ? 1 : 0)));
    const streams = loraLayers(m).map(([, l]) => l.dropoutState());
    const run = (on: boolean): { loss: number; grads: Float32Array[] } => {
      setNativeEnabled(on);
      loraLayers(m).forEach(([, l], i) => l.setDropoutState(streams[i]!)); // the same dropout masks
      const { value, grads } = tf.variableGrads(() => m.lossFromIds(ids, labels, { training: dropout > 0, rng: new Rng(5) }), vars);
      const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    resetNativeCounters();
    const nat = run(true);
    const nativeCalls = nativeStatus().calls.native;
    const ref = run(false);
    setNativeEnabled(true);
    assert.ok(nativeCalls > 20, `only ${nativeCalls} native matmuls in a step`);
    assert.ok(Number.isFinite(nat.loss) && nat.loss > 0);
    assert.ok(Math.abs(nat.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `${quant}: loss ${nat.loss} vs ${ref.loss}`);
    vars.forEach((v, i) => {
      const g = nat.grads[i]!;
      const r = ref.grads[i]!;
      let d2 = 0;
      let r2 = 0;
      for (let j = 0; j < g.length; j++) {
        d2 += (g[j]! - r[j]!) ** 2;
        r2 += r[j]! ** 2;
      }
      assert.ok(r2 > 0, `${v.name}: zero gradient`);
      assert.ok(Math.sqrt(d2 / r2) <= 1e-4, `${quant} ${v.name}: ‖Δg‖/‖g‖ = ${Math.sqrt(d2 / r2)}`);
    });
  } finally {
    setNativeEnabled(true);
    m.dispose();
  }
}

test('a Phi-3 LoRA step (float base, dropout): loss and every adapter gradient native = reference within 1e-4', (t) => {
  if (skip) return t.skip(skip);
  loraStep('none', 0.1);
});

test('a Phi-3 LoRA step on an int8 base: loss and gradients native = reference within 1e-4', (t) => {
  if (skip) return t.skip(skip);
  loraStep('int8', 0);
});

test('cpu backend: native BatchMatMul = float64 product; back to wasm afterwards', async (t) => {
  if (skip) return t.skip(skip);
  await initBackend({ backend: 'cpu' });
  try {
    assert.ok(nativeStatus().backends.includes('cpu'));
    for (const [as, bs, ta, tb] of [
      [[7, 13], [13, 5], false, false],
      [[13, 7], [5, 13], true, true],
      [[3, 40, 30], [30, 50], false, false],
      [[3, 500], [2, 500], false, true],
    ] as Array<[number[], number[], boolean, boolean]>) {
      compare(as, bs, ta, tb);
    }
  } finally {
    await initBackend({ backend: 'wasm' });
  }
});
