/** The `model.base` convention: directories and `preset:` specs, canonical specs, clear errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.ts';
import { tf } from '../src/backend/tf.ts';
import { CliniloraError } from '../src/errors.ts';
import { loadBase, parseBaseSpec } from '../src/pipeline/base.ts';
import { trainerConfig } from '../src/pipeline/train.ts';
import { defineConfig } from '../src/config/load.ts';

test('a preset spec: overrides applied, the init seed made explicit, same spec → same weights', async () => {
  await initBackend({ backend: 'cpu' });
  const b = parseBaseSpec('preset:phi3-nano?numHiddenLayers=1&hiddenSize=16&numAttentionHeads=2&numKeyValueHeads=1&intermediateSize=32', 7);
  assert.equal(b.kind, 'preset');
  if (b.kind !== 'preset') return;
  assert.equal(b.spec, 'preset:phi3-nano?hiddenSize=16&intermediateSize=32&numAttentionHeads=2&numHiddenLayers=1&numKeyValueHeads=1&seed=7');
  assert.equal(b.config.hiddenSize, 16);
  assert.equal(b.config.vocabSize, 32064); // the Phi-3 vocabulary stays
  // The canonical spec carries its seed: parsed again under another run seed it is the same base.
  const again = parseBaseSpec(b.spec, 99);
  assert.equal(again.spec, b.spec);
  const [m1, m2, m3] = [b, again, parseBaseSpec('preset:phi3-nano?numHiddenLayers=1&hiddenSize=16&numAttentionHeads=2&numKeyValueHeads=1&intermediateSize=32', 8)].map((s) => loadBase(s));
  const ids = [[1, 2, 3, 4]];
  const [l1, l2, l3] = [m1!, m2!, m3!].map((m) => tf.tidy(() => m.forward(ids).dataSync() as Float32Array));
  assert.deepEqual(l1, l2);
  assert.notDeepEqual(l1, l3);
  const q = loadBase(b, { quant: 'int8' });
  assert.equal(q.getLinear('model.layers.0.self_attn.qkv_proj').kind, 'int8');
  for (const m of [m1!, m2!, m3!, q]) m.dispose();
});

test('bad specs and missing directories are errors naming model.base', () => {
  const bad = (spec: string, re: RegExp): void => {
    assert.throws(() => parseBaseSpec(spec, 0), (e: unknown) => e instanceof CliniloraError && /'model\.base'/.test(e.message) && re.test(e.message));
  };
  bad('preset:phi9', /unknown model preset/);
  bad('preset:phi3-nano?width=3', /unknown key 'width'/);
  bad('preset:phi3-nano?hiddenSize=abc', /bad value/);
  bad('preset:phi3-nano?hiddenSize=30&numAttentionHeads=4', /must divide/);
  bad(join(mkdtempSync(join(tmpdir(), 'clinilora-base-')), 'none'), /base model not found/);
  bad(mkdtempSync(join(tmpdir(), 'clinilora-base-')), /no config\.json/);
});

test('trainer config from the experiment config: null evalEvery = once per epoch, nulls off', () => {
  const c = defineConfig({ training: { batchSize: 4, gradAccum: 2, evalEvery: null, maxSteps: null, epochs: 2, maxGradNorm: null, patience: null, checkpointEvery: null } });
  const t = trainerConfig(c, 40);
  assert.equal(t.evalEvery, 5); // 10 batches an epoch, 2 per step
  assert.equal(t.epochs, 2);
  assert.equal(t.maxSteps, undefined);
  assert.equal(t.maxGradNorm, 0);
  assert.equal(t.patience, undefined);
  assert.equal(t.checkpointEvery, 0);
  assert.deepEqual(t.betas, [0.9, 0.999]);
});
