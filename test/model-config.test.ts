/**
 * PhiConfig ⇄ HF config.json: round trips, presets, and errors that name the file and field.
 * The mini preset is checked against the published Phi-3-mini-4k-instruct numbers (FACTS.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configFromHf, configToHf, getPreset, presetNames, headDim, type PhiConfig } from '../src/model/config.ts';
import { numParameters } from '../src/model/phi3.ts';
import { CliniloraError } from '../src/errors.ts';

/** Phi-3-mini-4k-instruct's config.json as published (the keys transformers reads, plus extras). */
const MINI_JSON = {
  _name_or_path: 'Phi-3-mini-4k-instruct',
  architectures: ['Phi3ForCausalLM'],
  attention_dropout: 0.0,
  auto_map: { AutoConfig: 'configuration_phi3.Phi3Config', AutoModelForCausalLM: 'modeling_phi3.Phi3ForCausalLM' },
  bos_token_id: 1,
  embd_pdrop: 0.0,
  eos_token_id: 32000,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 4096,
  model_type: 'phi3',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  pad_token_id: 32000,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 2047,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.2',
  use_cache: true,
  attention_bias: false,
  vocab_size: 32064,
};

function tmpConfig(obj: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clinilora-config-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(obj, null, 2));
  return file;
}

function load(file: string): PhiConfig {
  return configFromHf(JSON.parse(fs.readFileSync(file, 'utf8')), { file });
}

function throwsNaming(fn: () => unknown, ...parts: Array<string | RegExp>): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CliniloraError, `a CliniloraError, got ${String(e)}`);
    for (const p of parts) assert.match(e.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
    return true;
  });
}

test('the published Phi-3-mini config reads as the mini preset; unknown keys are ignored', () => {
  const file = tmpConfig(MINI_JSON);
  const c = load(file);
  assert.deepEqual(c, getPreset('phi3-mini-4k-instruct'));
  assert.equal(headDim(c), 96);
  assert.equal(c.numKeyValueHeads, 32);
  // 3.8B parameters, as Microsoft describes Phi-3-mini.
  assert.ok(numParameters(c) > 3.7e9 && numParameters(c) < 3.9e9, String(numParameters(c)));
});

test('round trip: configFromHf(configToHf(c)) == c for every preset, and through a file', () => {
  for (const name of presetNames()) {
    const c = getPreset(name);
    assert.deepEqual(configFromHf(configToHf(c)), c, name);
    const file = tmpConfig(configToHf(c));
    assert.deepEqual(load(file), c, `${name} via file`);
  }
  const hf = configToHf(getPreset('phi3-nano'));
  // What transformers needs to pick the class and build it.
  assert.equal(hf.model_type, 'phi3');
  assert.deepEqual(hf.architectures, ['Phi3ForCausalLM']);
  assert.equal(hf.rope_scaling, null);
  for (const k of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'rms_norm_eps', 'rope_theta', 'sliding_window', 'tie_word_embeddings']) {
    assert.ok(k in hf, k);
  }
});

test('phi3-nano: 256 wide, 4 layers, 8 heads, the Phi-3 vocabulary; getPreset lists presets', () => {
  const c = getPreset('phi3-nano');
  assert.equal(c.vocabSize, 32064);
  assert.equal(c.hiddenSize, 256);
  assert.equal(c.numHiddenLayers, 4);
  assert.equal(c.numAttentionHeads, 8);
  assert.equal(c.numKeyValueHeads, 8);
  assert.equal(c.intermediateSize, 768);
  assert.equal(c.maxPositionEmbeddings, 1024);
  assert.ok(c.slidingWindow === null || c.slidingWindow >= c.maxPositionEmbeddings);
  // A copy: changing it does not change the preset.
  c.hiddenSize = 1;
  assert.equal(getPreset('phi3-nano').hiddenSize, 256);
  throwsNaming(() => getPreset('phi3-medium'), 'preset', 'phi3-mini-4k-instruct', 'phi3-nano', 'phi3-medium');
});

test('defaults of transformers Phi3Config for absent keys; null kv heads means MHA', () => {
  const c = configFromHf({ model_type: 'phi3', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: null });
  assert.equal(c.numKeyValueHeads, 4);
  assert.equal(c.slidingWindow, null);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.rmsNormEps, 1e-5);
  assert.equal(c.originalMaxPositionEmbeddings, c.maxPositionEmbeddings);
  const list = configFromHf({ ...MINI_JSON, eos_token_id: [32000, 32001, 32007] });
  assert.deepEqual(list.eosTokenId, [32000, 32001, 32007]);
});

test('errors name the file and the field, with expected and found', () => {
  const bad = (patch: Record<string, unknown>) => tmpConfig({ ...MINI_JSON, ...patch });
  let f = bad({ model_type: 'llama' });
  throwsNaming(() => load(f), f, "'model_type'", '"phi3"', '"llama"');
  f = bad({ rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [2] } });
  throwsNaming(() => load(f), f, "'rope_scaling'", 'longrope', 'expected null');
  f = bad({ rope_scaling: { type: 'su' } });
  throwsNaming(() => load(f), "'rope_scaling'", '"su"');
  f = bad({ hidden_size: '3072' });
  throwsNaming(() => load(f), f, "'hidden_size'", 'positive integer', '"3072"');
  f = bad({ tie_word_embeddings: 'no' });
  throwsNaming(() => load(f), "'tie_word_embeddings'", 'true or false');
  f = bad({ num_key_value_heads: 5 });
  throwsNaming(() => load(f), "'num_key_value_heads'", 'divisor of 32', 'found 5');
  f = bad({ hidden_size: 3000 });
  throwsNaming(() => load(f), "'hidden_size'", 'multiple of 32', 'found 3000');
  f = bad({ hidden_act: 'gelu' });
  throwsNaming(() => load(f), "'hidden_act'", '"silu"', '"gelu"');
  f = bad({ partial_rotary_factor: 0.5 });
  throwsNaming(() => load(f), "'partial_rotary_factor'", '0.5');
  f = bad({ attention_bias: true });
  throwsNaming(() => load(f), "'attention_bias'");
  const { vocab_size: _drop, ...noVocab } = MINI_JSON;
  f = tmpConfig(noVocab);
  throwsNaming(() => load(f), f, "'vocab_size'", 'missing');
  throwsNaming(() => configFromHf([1, 2], { file: 'x/config.json' }), 'x/config.json', 'object');
});
