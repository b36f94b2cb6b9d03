/**
 * LoRA over a model (a small container with Phi-3 module names): target selection with PEFT's rule,
 * errors that list what exists, exact trainable counts for Phi-3-mini from shapes alone, state dicts
 * in and out with every mismatch in one error, detach/merge over the container, config checks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import { NF4Linear } from '../src/kernels/nf4-linear.ts';
import type { Linear } from '../src/kernels/linear.ts';
import type { LinearContainer } from '../src/model/linear-container.ts';
import { defineLoraConfig, loraScaling, selectTargets, type LoraConfig } from '../src/model/lora/config.ts';
import { LoraLinear } from '../src/model/lora/layer.ts';
import {
  attachLora,
  countTrainable,
  detachLora,
  linearShapes,
  loadLoraStateDict,
  loraStateDict,
  loraVariables,
  mergeAndUnloadLora,
  setLoraTraining,
  type LoraTensors,
} from '../src/model/lora/model.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';

before(async () => {
  await initBackend({ backend: 'cpu' });
});

/** A two-layer toy with Phi-3's fused module names (hidden 16, intermediate 24). */
class ToyModel implements LinearContainer {
  readonly layers = new Map<string, Linear>();
  constructor(opts: { unfused?: boolean; nf4?: boolean } = {}) {
    const rng = new Rng(5);
    const H = 16;
    const I = 24;
    const add = (name: string, out: number, inF: number): void => {
      const w = rng.fillNormal(new Float32Array(out * inF), 0.1);
      this.layers.set(name, opts.nf4 ? NF4Linear.fromFloat(w, out, inF) : new FloatLinear(w, out, inF));
    };
    for (let i = 0; i < 2; i++) {
      const p = `model.layers.${i}`;
      if (opts.unfused) {
        for (const n of ['q_proj', 'k_proj', 'v_proj']) add(`${p}.self_attn.${n}`, H, H);
      } else add(`${p}.self_attn.qkv_proj`, 3 * H, H);
      add(`${p}.self_attn.o_proj`, H, H);
      if (opts.unfused) {
        add(`${p}.mlp.gate_proj`, I, H);
        add(`${p}.mlp.up_proj`, I, H);
      } else add(`${p}.mlp.gate_up_proj`, 2 * I, H);
      add(`${p}.mlp.down_proj`, H, I);
    }
    add('lm_head', 40, H);
  }
  linearNames(): string[] {
    return [...this.layers.keys()];
  }
  getLinear(name: string): Linear {
    const l = this.layers.get(name);
    if (l === undefined) throw new Error(`no ${name}`);
    return l;
  }
  setLinear(name: string, layer: Linear): void {
    this.layers.set(name, layer);
  }
}

const cfg = (init: Partial<LoraConfig>): LoraConfig => defineLoraConfig(init);

test('attachLora wraps exactly the targeted modules (PEFT suffix rule) and returns their names', () => {
  const m = new ToyModel();
  const before = new Map(m.layers);
  const names = attachLora(m, cfg({ r: 4, targetModules: ['qkv_proj', 'o_proj'] }), new Rng(1));
  assert.deepEqual(names, ['model.layers.0.self_attn.qkv_proj', 'model.layers.0.self_attn.o_proj', 'model.layers.1.self_attn.qkv_proj', 'model.layers.1.self_attn.o_proj']);
  for (const [name, l] of m.layers) {
    if (names.includes(name)) {
      assert.ok(l instanceof LoraLinear, name);
      assert.equal(l.base, before.get(name), `${name} wraps the original layer`);
    } else assert.equal(l, before.get(name), `${name} untouched`);
  }
  assert.equal(loraVariables(m).length, 8);
  assert.throws(() => attachLora(m, cfg({ targetModules: ['o_proj'] }), new Rng(1)), (e: unknown) => e instanceof CliniloraError && /already attached/.test(e.message));
  const restored = detachLora(m);
  assert.deepEqual(restored, names);
  for (const [name, l] of m.layers) assert.equal(l, before.get(name), `${name} restored`);
});

test('target selection: dotted suffixes, all-linear (no lm_head), unfused names, regex', () => {
  const fused = new ToyModel().linearNames();
  const unfused = new ToyModel({ unfused: true }).linearNames();
  const table: Array<[string[], LoraConfig, number]> = [
    [fused, cfg({ targetModules: ['self_attn.qkv_proj'] }), 2],
    [fused, cfg({ targetModules: ['gate_up_proj', 'down_proj'] }), 4],
    [fused, cfg({ targetModules: ['all-linear'] }), 8],
    [unfused, cfg({ targetModules: ['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj'] }), 10],
    [fused, cfg({ targetModules: [], targetModulesRegex: String.raw`.*\.layers\.1\..*_proj` }), 4],
  ];
  for (const [names, c, count] of table) assert.equal(selectTargets(c, names).length, count, JSON.stringify(c.targetModulesRegex ?? c.targetModules));
  assert.ok(!selectTargets(cfg({ targetModules: ['all-linear'] }), fused).includes('lm_head'), 'lm_head excluded');
});

test('unknown targets are one error listing each of them and the module suffixes that exist', () => {
  const m = new ToyModel();
  assert.throws(
    () => attachLora(m, cfg({ targetModules: ['q_proj', 'o_proj', 'proj'] }), new Rng(1)),
    (e: unknown) =>
      e instanceof CliniloraError &&
      e.code === 'E_CONFIG' &&
      /'q_proj', 'proj'/.test(e.message) &&
      /down_proj, gate_up_proj, lm_head, o_proj, qkv_proj/.test(e.message),
  );
  assert.equal(loraVariables(m).length, 0, 'nothing attached');
});

test('countTrainable: Phi-3-mini r=16 on qkv_proj + o_proj = 294,912 a layer, 9,437,184 in all (shapes only)', () => {
  const shapes = new Map<string, [number, number]>();
  for (let i = 0; i < 32; i++) {
    shapes.set(`model.layers.${i}.self_attn.qkv_proj`, [9216, 3072]);
    shapes.set(`model.layers.${i}.self_attn.o_proj`, [3072, 3072]);
    shapes.set(`model.layers.${i}.mlp.gate_up_proj`, [16384, 3072]);
    shapes.set(`model.layers.${i}.mlp.down_proj`, [3072, 8192]);
  }
  shapes.set('lm_head', [32064, 3072]);
  const c = cfg({ r: 16, loraAlpha: 32, targetModules: ['qkv_proj', 'o_proj'] });
  const { total, perModule } = countTrainable(c, shapes);
  assert.equal(perModule.get('model.layers.0.self_attn.qkv_proj')! + perModule.get('model.layers.0.self_attn.o_proj')!, 294_912);
  assert.equal(total, 9_437_184);
  assert.equal(perModule.size, 64);
  // All four targets: + r·(3072 + 16384) + r·(8192 + 3072) a layer.
  const all = countTrainable(cfg({ r: 16, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] }), shapes);
  assert.equal(all.total, 32 * (294_912 + 16 * (3072 + 16384) + 16 * (8192 + 3072)));
  // rank_pattern overrides r for matching modules only.
  const rp = countTrainable(cfg({ r: 16, targetModules: ['qkv_proj', 'o_proj'], rankPattern: { o_proj: 8 } }), shapes);
  assert.equal(rp.total, 32 * (16 * (3072 + 9216) + 8 * (3072 + 3072)));
});

test('countTrainable agrees with the variables attachLora creates', () => {
  const m = new ToyModel();
  const c = cfg({ r: 3, targetModules: ['qkv_proj', 'down_proj'], rankPattern: { down_proj: 2 } });
  const { total } = countTrainable(c, linearShapes(m));
  attachLora(m, c, new Rng(2));
  assert.equal(loraVariables(m).reduce((s, v) => s + v.size, 0), total);
  detachLora(m);
});

test('loraStateDict / loadLoraStateDict round trip; every mismatch in one error; nothing loaded on error', () => {
  const c = cfg({ r: 4, targetModules: ['qkv_proj', 'o_proj'], initLoraWeights: false });
  const a = new ToyModel();
  const b = new ToyModel();
  attachLora(a, c, new Rng(1));
  attachLora(b, c, new Rng(2));
  const sd = loraStateDict(a);
  assert.equal(sd.size, 4);
  const qkv = sd.get('model.layers.0.self_attn.qkv_proj')!;
  assert.deepEqual(qkv.shapeA, [4, 16]);
  assert.deepEqual(qkv.shapeB, [48, 4]);
  const x = tf.tensor2d(new Rng(3).fillNormal(new Float32Array(2 * 16), 1), [2, 16]);
  const name = 'model.layers.1.self_attn.o_proj';
  const outA = tf.tidy(() => a.getLinear(name).apply(x).dataSync());
  assert.notDeepEqual(Array.from(tf.tidy(() => b.getLinear(name).apply(x).dataSync())), Array.from(outA));
  loadLoraStateDict(b, sd);
  assert.deepEqual(Array.from(tf.tidy(() => b.getLinear(name).apply(x).dataSync())), Array.from(outA));

  const c2 = new ToyModel();
  attachLora(c2, c, new Rng(9));
  const before = loraStateDict(c2);
  const bad = new Map<string, LoraTensors>(sd);
  bad.delete('model.layers.0.self_attn.o_proj');
  const q = sd.get('model.layers.1.self_attn.qkv_proj')!;
  bad.set('model.layers.1.self_attn.qkv_proj', { ...q, loraA: new Float32Array(8 * 16), shapeA: [8, 16] });
  bad.set('model.layers.0.mlp.down_proj', q);
  assert.throws(
    () => loadLoraStateDict(c2, bad, { file: 'adapter_model.safetensors' }),
    (e: unknown) =>
      e instanceof CliniloraError &&
      e.code === 'E_SHAPE' &&
      /3 problem/.test(e.message) &&
      /model\.layers\.0\.self_attn\.o_proj: missing/.test(e.message) &&
      /model\.layers\.1\.self_attn\.qkv_proj\.lora_A: expected \[4, 16\], found \[8, 16\]/.test(e.message) &&
      /model\.layers\.0\.mlp\.down_proj: unexpected/.test(e.message) &&
      /adapter_model\.safetensors/.test(e.message),
  );
  for (const [n, t] of loraStateDict(c2)) assert.deepEqual(t.loraA, before.get(n)!.loraA, `${n} untouched`);
  x.dispose();
});

test('mergeAndUnloadLora replaces wrappers with merged bases of the same kind; setLoraTraining', () => {
  const m = new ToyModel({ nf4: true });
  const c = cfg({ r: 2, targetModules: ['o_proj'], initLoraWeights: false, loraDropout: 0.1 });
  const names = attachLora(m, c, new Rng(4));
  setLoraTraining(m, true);
  assert.ok(names.every((n) => (m.getLinear(n) as LoraLinear).training));
  setLoraTraining(m, false);
  const x = tf.tensor2d(new Rng(3).fillNormal(new Float32Array(2 * 16), 1), [2, 16]);
  const merged = mergeAndUnloadLora(m, { onWarning: () => {} });
  assert.deepEqual(merged, names);
  for (const n of names) {
    assert.equal(m.getLinear(n).kind, 'nf4');
    assert.ok(tf.tidy(() => m.getLinear(n).apply(x).dataSync()).every(Number.isFinite));
  }
  assert.equal(loraVariables(m).length, 0);
  x.dispose();
});

test('config: scaling derived (alpha/r, rsLoRA alpha/√r, patterns); invalid fields collected in one error', () => {
  const table: Array<[Partial<LoraConfig>, string, number]> = [
    [{ r: 16, loraAlpha: 32 }, 'x.qkv_proj', 2],
    [{ r: 16, loraAlpha: 32, useRslora: true }, 'x.qkv_proj', 8],
    [{ r: 16, loraAlpha: 32, rankPattern: { o_proj: 4 } }, 'model.layers.0.self_attn.o_proj', 8],
    [{ r: 16, loraAlpha: 32, alphaPattern: { 'layers\\.0\\.self_attn\\.o_proj': 64 } }, 'model.layers.0.self_attn.o_proj', 4],
    [{ r: 16, loraAlpha: 32, alphaPattern: { 'layers\\.0\\.self_attn\\.o_proj': 64 } }, 'model.layers.10.self_attn.o_proj', 2],
  ];
  for (const [init, module, want] of table) assert.equal(loraScaling(cfg(init), module), want, `${JSON.stringify(init)} on ${module}`);
  assert.ok(!('scaling' in cfg({})), 'scaling is not stored');
  assert.throws(
    () => defineLoraConfig({ r: 0, loraDropout: 1, useDora: true, bias: 'all' }),
    (e: unknown) => e instanceof CliniloraError && /r must be/.test(e.message) && /loraDropout/.test(e.message) && /useDora/.test(e.message) && /bias 'all'/.test(e.message),
  );
});
