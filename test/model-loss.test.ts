/**
 * lossFromIds against the Float64 reference (mean −log p over unmasked next-token targets), padding
 * and prompt masking, the target-only and all-positions paths (values and gradients), a model-level
 * finite-difference spot check, dropout, errors, and tensor counts over repeated passes. Backend: cpu.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import type { PhiConfig } from '../src/model/config.ts';
import { Phi3ForCausalLM, type Phi3Options } from '../src/model/phi3.ts';
import { initPhi3 } from '../src/model/init.ts';
import { tinyConfig, testWeights, referenceLogits, logProb, maxDiff, type Weights } from './model-reference.ts';

const tiny = tinyConfig;

function build(c: PhiConfig, w: Weights, opts: Phi3Options = {}): Phi3ForCausalLM {
  return Phi3ForCausalLM.fromWeights(c, (n) => w.get(n)!, opts);
}

function value(t: tf.Scalar): number {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

before(async () => {
  await initBackend({ backend: 'cpu' });
});

// Row 0: prompt of 3, answer of 4. Row 1: prompt of 2, answer of 2, then 3 padding tokens (junk ids).
const ids = [
  [5, 12, 7, 30, 2, 19, 8],
  [9, 3, 25, 14, 31, 6, 22],
];
const labels = [
  [0, 0, 0, 1, 1, 1, 1],
  [0, 0, 1, 1, 0, 0, 0],
];
const attn = [
  [1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 0, 0, 0],
];

function referenceLoss(c: PhiConfig, w: Weights, weights?: number[][]): number {
  let sum = 0;
  let n = 0;
  ids.forEach((row, b) => {
    const len = attn[b]!.reduce((a, x) => a + x, 0);
    const logits = referenceLogits(c, w, row.slice(0, len));
    for (let t = 1; t < len; t++) {
      if (labels[b]![t] !== 1) continue;
      const wt = weights?.[b]![t] ?? 1;
      sum -= wt * logProb(logits[t - 1]!, row[t]!);
      n += wt;
    }
  });
  return sum / n;
}

test('loss is the mean −log p over unmasked targets (reference), on both paths and chunk sizes', () => {
  const c = tiny();
  const w = testWeights(c, 31);
  const m = build(c, w);
  const want = referenceLoss(c, w);
  for (const opts of [{}, { logitsAt: 'all' as const }, { chunkRows: 2 }]) {
    const got = value(m.lossFromIds(ids, labels, { attentionMask: attn, ...opts }));
    assert.ok(Math.abs(got - want) < 1e-4, `${JSON.stringify(opts)}: ${got} vs ${want}`);
  }
  // Junk in the padded slots and in the masked prompt's labels changes nothing; a real target does.
  const junk = ids.map((r, b) => r.map((v, t) => (attn[b]![t] === 0 ? (v + 7) % 40 : v)));
  assert.ok(Math.abs(value(m.lossFromIds(junk, labels, { attentionMask: attn })) - want) < 1e-5);
  const changed = ids.map((r) => [...r]);
  changed[0]![5] = 1;
  assert.ok(Math.abs(value(m.lossFromIds(changed, labels, { attentionMask: attn })) - want) > 1e-3);
  // Weighted loss.
  const weights = labels.map((r) => r.map((_, t) => 1 + t));
  const got = value(m.lossFromIds(ids, labels, { attentionMask: attn, labelWeights: Float32Array.from(weights.flat()) }));
  assert.ok(Math.abs(got - referenceLoss(c, w, weights)) < 1e-4);
  m.dispose();
});

test('target-only and all-positions paths give the same gradients (trainable model)', () => {
  const c = tiny();
  const w = testWeights(c, 32);
  const m = build(c, w, { trainable: true });
  const vars = m.trainableVariables();
  assert.equal(vars.length, 1 + (2 * c.numHiddenLayers + 1) + (4 * c.numHiddenLayers + 1));
  const a = tf.variableGrads(() => m.lossFromIds(ids, labels, { attentionMask: attn, chunkRows: 2 }), vars);
  const b = tf.variableGrads(() => m.lossFromIds(ids, labels, { attentionMask: attn, logitsAt: 'all' }), vars);
  for (const v of vars) {
    const ga = a.grads[v.name]!.dataSync();
    const gb = b.grads[v.name]!.dataSync();
    assert.ok(maxDiff(ga, gb) < 1e-5, `${v.name}: maxdiff ${maxDiff(ga, gb)}`);
  }
  tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads)]);
  m.dispose();
});

test('model gradient spot check by central differences (ε = 1e-2, tolerance 2e-3 + 2e-2·|g|)', () => {
  const c = tiny();
  const w = testWeights(c, 33);
  const m = build(c, w, { trainable: true });
  const rng = new Rng(5);
  const loss = () => value(m.lossFromIds(ids, labels, { attentionMask: attn }));
  const vars = m.trainableVariables();
  const { grads, value: v0 } = tf.variableGrads(() => m.lossFromIds(ids, labels, { attentionMask: attn }), vars);
  v0.dispose();
  let checked = 0;
  for (const v of vars) {
    const g = grads[v.name]!.dataSync();
    const x = v.dataSync().slice() as Float32Array;
    // The largest-gradient element and two random ones of each variable.
    let big = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[big]!)) big = i;
    for (const i of [big, rng.int(x.length), rng.int(x.length)]) {
      const probe = (d: number) => {
        const xp = x.slice();
        xp[i]! += d;
        v.assign(tf.tensor(xp, v.shape));
        return loss();
      };
      const num = (probe(1e-2) - probe(-1e-2)) / 2e-2;
      assert.ok(Math.abs(num - g[i]!) <= 2e-3 + 2e-2 * Math.abs(g[i]!), `${v.name}[${i}]: numeric ${num}, analytic ${g[i]}`);
      checked++;
    }
    v.assign(tf.tensor(x, v.shape));
  }
  assert.ok(checked >= 3 * vars.length);
  tf.dispose(Object.values(grads));
  m.dispose();
});

test('frozen base: gradient reaches a trainable embedding through every layer (what LoRA needs)', () => {
  const c = tiny();
  const m = build(c, testWeights(c, 34), { embedding: { trainable: true } });
  const vars = m.trainableVariables();
  assert.equal(vars.length, 1);
  const { value: l, grads } = tf.variableGrads(() => m.lossFromIds(ids, labels, { attentionMask: attn }), vars);
  const g = grads[vars[0]!.name]!.dataSync();
  // Rows of tokens that occur only after every target never get a gradient; used rows do.
  const row = (id: number) => Array.from(g.slice(id * c.hiddenSize, (id + 1) * c.hiddenSize));
  assert.ok(row(5).some((x) => x !== 0), 'first prompt token gets a gradient');
  assert.ok(row(22).every((x) => x === 0), 'a padding-only token gets none');
  tf.dispose([l, ...Object.values(grads)]);
  m.dispose();
});

test('tensor count is stable over 10 forward/backward passes', () => {
  const c = tiny({ residPdrop: 0.1, attentionDropout: 0.1, embdPdrop: 0.1 });
  const m = initPhi3(c, new Rng(1), { trainable: true });
  const vars = m.trainableVariables();
  const rng = new Rng(2).split('dropout');
  const counts: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { value: l, grads } = tf.variableGrads(() => m.lossFromIds(ids, labels, { attentionMask: attn, training: true, rng }), vars);
    tf.dispose([l, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(counts, new Array(10).fill(counts[0]));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) m.forward(ids, { attentionMask: attn }).dispose();
  assert.equal(tf.memory().numTensors, before);
  m.dispose();
});

test('dropout: needs an rng, is reproducible from its seed, off when not training', () => {
  const c = tiny({ residPdrop: 0.2, attentionDropout: 0.2, embdPdrop: 0.2 });
  const w = testWeights(c, 35);
  const m = build(c, w);
  assert.throws(() => m.lossFromIds(ids, labels, { attentionMask: attn, training: true }), /rng/);
  const a = value(m.lossFromIds(ids, labels, { attentionMask: attn, training: true, rng: new Rng(9) }));
  const b = value(m.lossFromIds(ids, labels, { attentionMask: attn, training: true, rng: new Rng(9) }));
  const d = value(m.lossFromIds(ids, labels, { attentionMask: attn, training: true, rng: new Rng(10) }));
  const off = value(m.lossFromIds(ids, labels, { attentionMask: attn }));
  assert.equal(a, b);
  assert.notEqual(a, d);
  assert.ok(Math.abs(off - referenceLoss(c, w)) < 1e-4);
  m.dispose();
});

test('loss input errors: no targets, a target on padding, mismatched shapes', () => {
  const c = tiny();
  const m = build(c, testWeights(c, 36));
  assert.throws(() => m.lossFromIds(ids, labels.map((r) => r.map(() => 0)), { attentionMask: attn }), /labelsMask.*no target/);
  const bad = labels.map((r) => [...r]);
  bad[1]![5] = 1;
  assert.throws(() => m.lossFromIds(ids, bad, { attentionMask: attn }), /labelsMask.*\[1, 5\]/);
  assert.throws(() => m.lossFromIds(ids, [[0, 1]], { attentionMask: attn }), /labelsMask.*\[2, 7\]/);
  m.dispose();
});
