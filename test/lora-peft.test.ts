import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import type { Linear } from '../src/kernels/linear.ts';
import type { LinearContainer } from '../src/model/linear-container.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { loraLayers, loraStateDict } from '../src/model/lora/model.ts';
import { loadLoraAdapter, saveLoraAdapter } from '../src/model/lora/peft-files.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { fromFloat32 } from '../src/io/tensor.ts';
import { Rng } from '../src/util/random.ts';

/** A two-layer stand-in for the model: HF module names, float bases. */
function container(seed: number, hidden = 8): LinearContainer & { layers: Map<string, Linear> } {
  const rng = new Rng(seed);
  const layers = new Map<string, Linear>();
  const add = (name: string, out: number, inn: number): void => {
    layers.set(name, new FloatLinear(rng.fillNormal(new Float32Array(out * inn), 0.2), out, inn));
  };
  add('model.layers.0.self_attn.qkv_proj', 3 * hidden, hidden);
  add('model.layers.0.self_attn.o_proj', hidden, hidden);
  return {
    layers,
    linearNames: () => [...layers.keys()],
    getLinear: (n) => layers.get(n)!,
    setLinear: (n, l) => void layers.set(n, l),
  };
}

function outputs(c: ReturnType<typeof container>, x: tf.Tensor2D): Float32Array[] {
  return [...c.layers.entries()]
    .filter(([n]) => n.endsWith('o_proj'))
    .map(([, l]) => tf.tidy(() => l.apply(x)).dataSync() as Float32Array);
}

test('an adapter saved in PEFT format loads back into a fresh model with identical outputs', async () => {
  await initBackend({ backend: 'cpu' });
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-peft-bridge-'));
  try {
    const config = defineLoraConfig({ r: 2, loraAlpha: 4, targetModules: ['qkv_proj', 'o_proj'] });
    const a = container(1);
    const { attachLora } = await import('../src/model/lora/model.ts');
    attachLora(a, config, new Rng(5));
    // give B non-zero values so the adapter changes the output
    for (const [, l] of loraLayers(a)) {
      const bVals = new Rng(9).fillNormal(new Float32Array(l.outFeatures * l.r), 0.5);
      l.setLoraWeights(new Float32Array(l.loraA.dataSync()), bVals);
    }
    saveLoraAdapter(join(dir, 'adapter'), a, config, { baseModelNameOrPath: 'microsoft/Phi-3-mini-4k-instruct' });
    const cfgJson = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfgJson.peft_type, 'LORA');
    assert.equal(cfgJson.r, 2);
    assert.equal(cfgJson.lora_alpha, 4);
    assert.deepEqual(cfgJson.target_modules, ['qkv_proj', 'o_proj']);

    const b = container(1);
    const loaded = loadLoraAdapter(join(dir, 'adapter'), b, new Rng(123));
    assert.equal(loaded.r, 2);
    const x = tf.tensor2d(new Rng(3).fillNormal(new Float32Array(4 * 8)), [4, 8]);
    assert.deepEqual(outputs(b, x), outputs(a, x));
    const sa = loraStateDict(a), sb = loraStateDict(b);
    for (const [name, t] of sa) assert.deepEqual(sb.get(name)!.loraB, t.loraB, name);
    x.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an adapter written the way PEFT writes it loads; one for another base fails and leaves the model as it was', async () => {
  await initBackend({ backend: 'cpu' });
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-peft-bridge-'));
  try {
    const hidden = 8, r = 4;
    const peftDir = join(dir, 'from-peft');
    mkdirSync(peftDir);
    writeFileSync(
      join(peftDir, 'adapter_config.json'),
      JSON.stringify({
        alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'microsoft/Phi-3-mini-4k-instruct', bias: 'none',
        fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layers_pattern: null, layers_to_transform: null,
        loftq_config: {}, lora_alpha: 16, lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core',
        modules_to_save: null, peft_type: 'LORA', r, rank_pattern: {}, revision: null, target_modules: ['o_proj'],
        task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false,
      }),
    );
    const rng = new Rng(11);
    const A = rng.fillNormal(new Float32Array(r * hidden)), B = rng.fillNormal(new Float32Array(hidden * r));
    const key = 'base_model.model.model.layers.0.self_attn.o_proj';
    writeSafetensors(
      join(peftDir, 'adapter_model.safetensors'),
      new Map([[`${key}.lora_A.weight`, fromFloat32(A, [r, hidden], 'F32')], [`${key}.lora_B.weight`, fromFloat32(B, [hidden, r], 'F32')]]),
      { format: 'pt' },
    );
    const c = container(2, hidden);
    const base = c.getLinear('model.layers.0.self_attn.o_proj');
    const cfg = loadLoraAdapter(peftDir, c, new Rng(1));
    assert.equal(cfg.loraAlpha, 16);
    const layers = loraLayers(c);
    assert.equal(layers.length, 1);
    const layer = layers[0]![1];
    assert.equal(layer.scaling, 16 / r);
    assert.deepEqual(layer.loraB.dataSync(), B);
    // y = base(x) + x Aᵀ Bᵀ · scaling, computed here independently
    const x = new Rng(4).fillNormal(new Float32Array(hidden));
    const y = tf.tidy(() => c.getLinear('model.layers.0.self_attn.o_proj').apply(tf.tensor2d(x, [1, hidden]))).dataSync();
    const y0 = tf.tidy(() => base.apply(tf.tensor2d(x, [1, hidden]))).dataSync();
    for (let o = 0; o < hidden; o++) {
      let delta = 0;
      for (let k = 0; k < r; k++) {
        let ax = 0;
        for (let i = 0; i < hidden; i++) ax += A[k * hidden + i]! * x[i]!;
        delta += B[o * r + k]! * ax;
      }
      assert.ok(Math.abs(y[o]! - (y0[o]! + delta * (16 / r))) < 1e-4, `output ${o}`);
    }

    // the same adapter on a model of another width: one error naming the file and the shapes
    const wide = container(2, 16);
    const before = wide.getLinear('model.layers.0.self_attn.o_proj');
    assert.throws(
      () => loadLoraAdapter(peftDir, wide, new Rng(1)),
      (e: Error) => /adapter_model\.safetensors/.test(e.message) && /expected \[4, 16\], found \[4, 8\]/.test(e.message),
    );
    assert.equal(wide.getLinear('model.layers.0.self_attn.o_proj'), before, 'model untouched after a failed load');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
