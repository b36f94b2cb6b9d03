/**
 * The model with the other helpers' parts plugged in through its two seams: the linear factory
 * (NF4 / int8 from src/kernels/quant-linear.ts) and the LinearContainer (LoRA from src/model/lora).
 * Checks: an NF4 model stays close to the float one; a fresh adapter reproduces the base exactly;
 * gradients reach only the adapters, through the fused loss with a quantized lm_head. Backend: wasm.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { quantizeLinear } from '../src/kernels/quant-linear.ts';
import { attachLora, loraVariables } from '../src/model/lora/model.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { testWeights, maxDiff } from './model-reference.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const c: PhiConfig = {
  ...getPreset('phi3-nano'),
  vocabSize: 64,
  hiddenSize: 64,
  intermediateSize: 96,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
};
const ids = [
  [5, 12, 7, 30, 2, 19, 8, 44, 61, 3],
  [9, 3, 25, 14, 31, 6, 22, 50, 1, 17],
];
const labels = ids.map((r) => r.map((_, t) => (t >= 5 ? 1 : 0)));

function logits(m: Phi3ForCausalLM): Float32Array {
  const l = m.forward(ids);
  const d = l.dataSync() as Float32Array;
  l.dispose();
  return d;
}

test('NF4 and int8 models through the linear factory: close to float, every linear quantized', () => {
  const w = testWeights(c, 41, 0.2);
  const source = (n: string) => w.get(n)!;
  const ref = logits(Phi3ForCausalLM.fromWeights(c, source));
  for (const quant of ['nf4', 'int8'] as const) {
    const m = Phi3ForCausalLM.fromWeights(c, source, { linearFactory: (name, wt, o, i) => quantizeLinear(wt, o, i, { quant, name }) });
    assert.ok(m.linearNames().every((n) => m.getLinear(n).kind === quant));
    const got = logits(m);
    const scale = Math.max(...Array.from(ref, Math.abs));
    const d = maxDiff(got, ref);
    assert.ok(d > 0 && d < 0.3 * scale, `${quant}: maxdiff ${d} of logit scale ${scale}`);
    m.dispose();
  }
});

test('LoRA on an NF4 base: fresh adapter = base; gradients reach only the adapters', () => {
  const w = testWeights(c, 42, 0.2);
  const m = Phi3ForCausalLM.fromWeights(c, (n) => w.get(n)!, { linearFactory: (name, wt, o, i) => quantizeLinear(wt, o, i, { quant: 'nf4', name }) });
  const base = logits(m);
  const targets = attachLora(m, defineLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] }), new Rng(1));
  assert.equal(targets.length, 4 * c.numHiddenLayers);
  assert.equal(maxDiff(logits(m), base), 0, 'lora_B = 0 reproduces the base');
  const vars = m.trainableVariables();
  assert.deepEqual(vars.map((v) => v.name).sort(), loraVariables(m).map((v) => v.name).sort());
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => m.lossFromIds(ids, labels), vars);
    assert.ok(Number.isFinite(value.dataSync()[0]!));
    // lora_B starts at 0, so its gradient is the one that is non-zero at step 0.
    const nonZero = vars.filter((v) => grads[v.name]!.dataSync().some((x) => x !== 0)).length;
    assert.ok(nonZero >= vars.length / 2, `${nonZero} of ${vars.length} adapter tensors get a gradient`);
    tf.dispose([value, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(counts, new Array(3).fill(counts[0]));
  m.dispose();
});
