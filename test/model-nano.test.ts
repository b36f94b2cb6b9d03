/**
 * One phi3-nano forward (vocab 32064) on wasm: shapes, finiteness, a near-uniform next-token
 * distribution at init (loss ≈ ln 32064), and the fused loss agreeing with full logits.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { numParameters } from '../src/model/phi3.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

test('phi3-nano forward and loss on wasm', () => {
  const c = getPreset('phi3-nano');
  const m = initPhi3(c, new Rng(1));
  assert.equal(m.bytes(), numParameters(c) * 4);
  const rng = new Rng(2);
  const ids = [Array.from({ length: 24 }, () => rng.int(c.vocabSize))];
  const logits = m.forward(ids);
  assert.deepEqual(logits.shape, [1, 24, 32064]);
  const d = logits.dataSync();
  assert.ok(d.every(Number.isFinite));
  logits.dispose();
  const labels = [ids[0]!.map((_, t) => (t >= 12 ? 1 : 0))];
  const fused = m.lossFromIds(ids, labels);
  const all = m.lossFromIds(ids, labels, { logitsAt: 'all' });
  const [lf, la] = [fused.dataSync()[0]!, all.dataSync()[0]!];
  tf.dispose([fused, all]);
  assert.ok(Math.abs(lf - Math.log(32064)) < 0.1, `init loss ${lf} ≈ ln V`);
  assert.ok(Math.abs(lf - la) < 1e-4, `${lf} vs ${la}`);
  m.dispose();
});

test('wasm: repeated forward/backward of a tiny trainable model (grouped attention) keeps the tensor count', () => {
  const c = { ...getPreset('phi3-nano'), vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2 };
  const m = initPhi3(c, new Rng(3), { trainable: true });
  const rng = new Rng(4);
  const ids = Array.from({ length: 2 }, () => Array.from({ length: 12 }, () => rng.int(64)));
  const labels = ids.map((r) => r.map((_, t) => (t >= 4 ? 1 : 0)));
  const vars = m.trainableVariables();
  const counts: number[] = [];
  for (let i = 0; i < 4; i++) {
    const { value, grads } = tf.variableGrads(() => m.lossFromIds(ids, labels), vars);
    assert.ok(Number.isFinite(value.dataSync()[0]!));
    tf.dispose([value, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(counts, new Array(4).fill(counts[0]));
  m.dispose();
});
