import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { defaultPeftLoraConfig, loadAdapterFiles, saveAdapterFiles, type LoraPair } from '../src/io/peft.ts';
import { openSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { fromFloat32, toFloat32, type RawTensor } from '../src/io/tensor.ts';

const root = mkdtempSync(join(tmpdir(), 'clinilora-peft-'));
after(() => rmSync(root, { recursive: true, force: true }));

function filled(shape: number[], seed: number, dtype: 'F32' | 'F16' = 'F32'): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromFloat32(Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i) / 4), shape, dtype);
}

/** Phi-3-like shapes at toy size: hidden 8, qkv out 24, r 4. */
function modules(r = 4): Map<string, LoraPair> {
  const m = new Map<string, LoraPair>();
  for (let l = 0; l < 2; l++) {
    m.set(`model.layers.${l}.self_attn.qkv_proj`, { loraA: filled([r, 8], l * 10 + 1), loraB: filled([24, r], l * 10 + 2) });
    m.set(`model.layers.${l}.self_attn.o_proj`, { loraA: filled([r, 8], l * 10 + 3), loraB: filled([8, r], l * 10 + 4) });
  }
  return m;
}

test('save → load round trip; files on disk are what PEFT writes', () => {
  const dir = join(root, 'rt');
  const config = defaultPeftLoraConfig({
    r: 4,
    loraAlpha: 8,
    loraDropout: 0.05,
    targetModules: ['qkv_proj', 'o_proj'],
    baseModelNameOrPath: 'microsoft/Phi-3-mini-4k-instruct',
  });
  const mods = modules();
  saveAdapterFiles(dir, config, mods);

  const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(json.peft_type, 'LORA');
  assert.equal(json.task_type, 'CAUSAL_LM');
  assert.equal(json.r, 4);
  assert.equal(json.lora_alpha, 8);
  assert.equal(json.lora_dropout, 0.05);
  assert.deepEqual(json.target_modules, ['qkv_proj', 'o_proj']);
  assert.equal(json.bias, 'none');
  assert.equal(json.base_model_name_or_path, 'microsoft/Phi-3-mini-4k-instruct');
  assert.equal(json.fan_in_fan_out, false);
  assert.equal(json.use_rslora, false);
  assert.equal(json.use_dora, false);
  assert.equal(json.modules_to_save, null);
  assert.equal(json.init_lora_weights, true);
  assert.deepEqual(json.rank_pattern, {});
  assert.deepEqual(json.alpha_pattern, {});
  assert.equal(json.revision, null);
  assert.ok(!Object.keys(json).some((k) => /[A-Z]/.test(k)), 'snake_case keys only');
  assert.deepEqual(Object.keys(json), Object.keys(json).sort(), 'keys sorted as PEFT writes them');

  const st = openSafetensors(join(dir, 'adapter_model.safetensors'));
  assert.deepEqual(st.metadata, { format: 'pt' });
  assert.ok(st.has('base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight'));
  assert.deepEqual(st.info('base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight').shape, [24, 4]);
  assert.equal(st.names().length, 8);
  st.close();

  const loaded = loadAdapterFiles(dir);
  assert.deepEqual({ ...loaded.config, extra: undefined }, { ...config, extra: undefined });
  assert.deepEqual([...loaded.modules.keys()].sort(), [...mods.keys()].sort());
  for (const [name, pair] of mods) {
    const got = loaded.modules.get(name)!;
    assert.deepEqual(Array.from(toFloat32(got.loraA)), Array.from(toFloat32(pair.loraA)), name);
    assert.deepEqual(Array.from(toFloat32(got.loraB)), Array.from(toFloat32(pair.loraB)), name);
  }
});

// adapter_config.json as PEFT 0.18 writes it (key set and order copied from a real adapter on the Hub,
// values adapted to a Phi-3 adapter).
const PEFT_WRITTEN = `{
  "alora_invocation_tokens": null,
  "alpha_pattern": {},
  "arrow_config": null,
  "auto_mapping": null,
  "base_model_name_or_path": "microsoft/Phi-3-mini-4k-instruct",
  "bias": "none",
  "corda_config": null,
  "ensure_weight_tying": false,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 32,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "peft_version": "0.18.0",
  "qalora_group_size": 16,
  "r": 16,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "o_proj",
    "qkv_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": true
}`;

test('an adapter_config.json written by PEFT loads, and unknown keys survive a re-save', () => {
  const dir = join(root, 'peftwritten');
  mkdirSync(dir);
  writeFileSync(join(dir, 'adapter_config.json'), PEFT_WRITTEN);
  writeSafetensors(
    join(dir, 'adapter_model.safetensors'),
    [
      ['base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight', filled([16, 8], 1, 'F16')],
      ['base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight', filled([8, 16], 2, 'F16')],
    ],
    { format: 'pt' },
  );
  const { config, modules: mods } = loadAdapterFiles(dir);
  assert.equal(config.r, 16);
  assert.equal(config.loraAlpha, 32);
  assert.equal(config.loraDropout, 0.05);
  assert.equal(config.useRslora, true);
  assert.deepEqual(config.targetModules, ['o_proj', 'qkv_proj']);
  assert.equal(config.baseModelNameOrPath, 'microsoft/Phi-3-mini-4k-instruct');
  assert.equal(config.extra?.['peft_version'], '0.18.0');
  assert.equal(config.extra?.['lora_bias'], false);
  assert.equal(mods.get('model.layers.0.self_attn.o_proj')!.loraA.dtype, 'F16');

  const again = join(root, 'resaved');
  saveAdapterFiles(again, config, mods);
  const original = JSON.parse(PEFT_WRITTEN);
  const resaved = JSON.parse(readFileSync(join(again, 'adapter_config.json'), 'utf8'));
  assert.deepEqual(resaved, original);
});

function expectError(fn: () => unknown, code: string, ...fragments: string[]): CliniloraError {
  let err: CliniloraError | undefined;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CliniloraError, String(e));
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `'${f}' in: ${e.message}`);
    err = e;
    return true;
  });
  return err!;
}

test('all weight problems are reported in one error', () => {
  const dir = join(root, 'bad');
  mkdirSync(dir);
  writeFileSync(join(dir, 'adapter_config.json'), PEFT_WRITTEN); // r = 16
  writeSafetensors(join(dir, 'adapter_model.safetensors'), [
    ['base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight', filled([16, 8], 1)], // no B
    ['base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight', filled([8, 8], 2)], // rank 8 ≠ 16
    ['base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight', filled([24, 8], 3)],
    ['base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight', filled([24, 16], 4)], // no A
    ['base_model.model.model.embed_tokens.weight', filled([4, 8], 5)], // not a LoRA key
  ]);
  const e = expectError(
    () => loadAdapterFiles(dir),
    'E_FORMAT',
    '5 problem(s)',
    'layers.0.self_attn.o_proj: lora_A without lora_B',
    'layers.0.self_attn.qkv_proj.lora_A: expected [16, in], found [8, 8]',
    'layers.0.self_attn.qkv_proj.lora_B: expected [out, 16], found [24, 8]',
    'layers.1.self_attn.qkv_proj: lora_B without lora_A',
    'embed_tokens.weight: not a LoRA key',
  );
  assert.equal(e.details.file, join(dir, 'adapter_model.safetensors'));

  // saving checks the same things
  const mods = modules(4);
  mods.set('model.layers.5.mlp.down_proj', { loraA: filled([3, 8], 1), loraB: filled([8, 4], 2) });
  expectError(() => saveAdapterFiles(join(root, 'nosave'), defaultPeftLoraConfig({ r: 4, targetModules: ['x'] }), mods), 'E_SHAPE', 'down_proj.lora_A: expected [4, in], found [3, 8]');
});

test('rank_pattern gives a module its own rank', () => {
  const dir = join(root, 'pattern');
  const config = defaultPeftLoraConfig({ r: 4, targetModules: ['qkv_proj', 'o_proj'], rankPattern: { 'layers.1.self_attn.o_proj': 2 } });
  const mods = modules(4);
  mods.set('model.layers.1.self_attn.o_proj', { loraA: filled([2, 8], 7), loraB: filled([8, 2], 8) });
  saveAdapterFiles(dir, config, mods);
  assert.deepEqual(loadAdapterFiles(dir).modules.get('model.layers.1.self_attn.o_proj')!.loraA.shape, [2, 8]);
  mods.set('model.layers.0.self_attn.o_proj', { loraA: filled([2, 8], 7), loraB: filled([8, 2], 8) });
  expectError(() => saveAdapterFiles(dir, config, mods), 'E_SHAPE', 'layers.0.self_attn.o_proj.lora_A');
});

test('config and file errors: missing files, .bin only, not LoRA, invalid fields', () => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  expectError(() => loadAdapterFiles(empty), 'E_MISSING', join(empty, 'adapter_config.json'));

  const bin = join(root, 'binonly');
  mkdirSync(bin);
  writeFileSync(join(bin, 'adapter_config.json'), PEFT_WRITTEN);
  writeFileSync(join(bin, 'adapter_model.bin'), 'pickle');
  expectError(() => loadAdapterFiles(bin), 'E_MISSING', 'adapter_model.safetensors', 'only safetensors');

  const ia3 = join(root, 'ia3');
  mkdirSync(ia3);
  writeFileSync(join(ia3, 'adapter_config.json'), JSON.stringify({ ...JSON.parse(PEFT_WRITTEN), peft_type: 'IA3' }));
  expectError(() => loadAdapterFiles(ia3), 'E_UNSUPPORTED', 'IA3');

  const invalid = join(root, 'invalid');
  mkdirSync(invalid);
  writeFileSync(join(invalid, 'adapter_config.json'), JSON.stringify({ ...JSON.parse(PEFT_WRITTEN), r: 0, lora_alpha: '16', use_rslora: 'yes' }));
  expectError(() => loadAdapterFiles(invalid), 'E_CONFIG', "'r'", "'lora_alpha'", "'use_rslora'");

  writeFileSync(join(invalid, 'adapter_config.json'), '{"r": 4,');
  expectError(() => loadAdapterFiles(invalid), 'E_FORMAT', 'adapter_config.json', 'JSON');
});
