/**
 * Gradient checkpointing (ForwardOptions.gradientCheckpointing): each decoder layer recomputed in the
 * backward. With dropout on everywhere (embedding, residual, attention, LoRA), on a float and on an
 * NF4 base, the loss and every gradient equal those without checkpointing, the dropout streams end
 * where they would have (a second step matches too), the peak of live tensor bytes drops, and nothing
 * leaks. Backend: wasm.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { quantizeLinear } from '../src/kernels/quant-linear.ts';
import { attachLora, loraLayers, loraVariables, setLoraTraining } from '../src/model/lora/model.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { testWeights } from './model-reference.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const c: PhiConfig = {
  ...getPreset('phi3-nano'),
  vocabSize: 64,
  hiddenSize: 64,
  intermediateSize: 96,
  numHiddenLayers: 3,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  residPdrop: 0.1,
  attentionDropout: 0.1,
  embdPdrop: 0.1,
};
const ids = [
  [5, 12, 7, 30, 2, 19, 8, 44, 61, 3, 9, 27],
  [9, 3, 25, 14, 31, 6, 22, 50, 1, 17, 40, 11],
];
const labels = ids.map((r) => r.map((_, t) => (t >= 4 ? 1 : 0)));

function build(quant: 'none' | 'nf4'): { m: Phi3ForCausalLM; vars: tf.Variable[] } {
  const w = testWeights(c, 7, 0.2);
  const m = Phi3ForCausalLM.fromWeights(c, (n) => w.get(n)!, { linearFactory: (name, wt, o, i) => quantizeLinear(wt, o, i, { quant, name }) });
  attachLora(m, defineLoraConfig({ r: 4, loraAlpha: 8, loraDropout: 0.2, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] }), new Rng(3));
  setLoraTraining(m, true);
  const vars = loraVariables(m);
  // B starts at zero (PEFT): move it so every adapter carries a gradient through A as well.
  const r = new Rng(5);
  for (const v of vars) if (v.name.includes('lora_B') || v.shape[0]! > v.shape[1]!) v.assign(tf.tensor(r.fillNormal(new Float32Array(v.size), 0.1), v.shape));
  return { m, vars };
}

/** Two steps' losses and gradients (each step draws dropout from the same stream). */
async function twoSteps(m: Phi3ForCausalLM, vars: tf.Variable[], gradientCheckpointing: boolean): Promise<{ losses: number[]; grads: Float32Array[][]; peakBytes: number }> {
  const rng = new Rng(11);
  for (const [, l] of loraLayers(m)) l.setDropoutState(new Rng(l.inFeatures).state()); // both runs draw the same masks
  const losses: number[] = [];
  const grads: Float32Array[][] = [];
  for (let s = 0; s < 2; s++) {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const { value, grads: g } = tf.variableGrads(() => m.lossFromIds(ids, labels, { training: true, rng, gradientCheckpointing }), vars);
      losses.push(value.dataSync()[0]!);
      grads.push(vars.map((v) => g[v.name]!.dataSync() as Float32Array));
    });
    assert.equal(tf.memory().numTensors, before, 'a step leaks tensors');
  }
  // Peak live tensor bytes of one more step (tfjs's own accounting).
  const prof = await tf.profile(() => tf.tidy(() => void tf.variableGrads(() => m.lossFromIds(ids, labels, { training: true, rng, gradientCheckpointing }), vars)));
  return { losses, grads, peakBytes: prof.peakBytes };
}

for (const quant of ['none', 'nf4'] as const) {
  test(`gradient checkpointing gives the same loss and gradients, dropout on (${quant} base)`, async () => {
    const { m, vars } = build(quant);
    try {
      const ref = await twoSteps(m, vars, false);
      const got = await twoSteps(m, vars, true);
      for (let s = 0; s < 2; s++) {
        assert.ok(Math.abs(got.losses[s]! - ref.losses[s]!) <= 1e-6 * Math.abs(ref.losses[s]!), `step ${s}: loss ${got.losses[s]} vs ${ref.losses[s]}`);
        vars.forEach((v, i) => {
          const a = got.grads[s]![i]!;
          const b = ref.grads[s]![i]!;
          let d = 0;
          let scale = 0;
          for (let k = 0; k < b.length; k++) {
            d = Math.max(d, Math.abs(a[k]! - b[k]!));
            scale = Math.max(scale, Math.abs(b[k]!));
          }
          assert.ok(scale > 0, `${v.name}: zero gradient`);
          assert.ok(d <= 1e-5 * scale, `step ${s} ${v.name}: gradients differ by ${d} (scale ${scale})`);
        });
      }
      assert.notEqual(ref.losses[0], ref.losses[1], 'the two steps drew the same dropout');
      // Three layers: the taped activations of all three against one layer's recompute plus inputs.
      assert.ok(got.peakBytes < 0.75 * ref.peakBytes, `peak tensor bytes ${got.peakBytes} with checkpointing vs ${ref.peakBytes} without`);
    } finally {
      m.dispose();
    }
  });
}
