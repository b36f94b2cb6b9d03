import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { configsDir, loadConfig, type CliniloraConfig } from '../src/config/index.ts';

const files = readdirSync(configsDir()).filter((f) => /\.ya?ml$/.test(f));
const load = (name: string): CliniloraConfig => loadConfig(join(configsDir(), name)).config;

test('the issue-4 configs exist', () => {
  for (const f of ['auditor-nano', 'heart-nano', 'alpacare-nano', 'auditor-phi3-mini', 'heart-phi3-mini', 'alpacare-phi3-mini']) {
    assert.ok(files.includes(`${f}.yaml`), `missing experiments/configs/${f}.yaml`);
  }
});

test('every file in experiments/configs/ loads and names its task', () => {
  for (const f of files) {
    const c = load(f);
    const task = f.split('-')[0] === 'heart' ? 'heart-risk' : f.split('-')[0];
    assert.equal(c.task, task, f);
  }
});

test('the nano configs run on the shipped base', () => {
  for (const f of files.filter((x) => x.includes('-nano'))) assert.equal(load(f).model.base, 'models/phi3-nano', f);
});

test('auditor-phi3-mini: 8-bit base, r16/alpha32/dropout 0.05 on the attention projections, 3 epochs, 4x4, lr 1e-4, warmup 0.1, len 512, ckpt 500', () => {
  const c = load('auditor-phi3-mini.yaml');
  assert.equal(c.model.quant, 'int8');
  assert.equal(c.lora.r, 16);
  assert.equal(c.lora.loraAlpha, 32);
  assert.equal(c.lora.loraDropout, 0.05);
  assert.deepEqual([...c.lora.targetModules].sort(), ['o_proj', 'qkv_proj']);
  assert.equal(c.training.epochs, 3);
  assert.equal(c.training.maxSteps, null);
  assert.equal(c.training.batchSize, 4);
  assert.equal(c.training.gradAccum, 4);
  assert.equal(c.training.lr, 1e-4);
  assert.equal(c.training.warmupRatio, 0.1);
  assert.equal(c.data.maxLength, 512);
  assert.equal(c.training.checkpointEvery, 500);
  // the seed auditor's generation preset
  assert.equal(c.eval.maxNewTokens, 400);
  assert.equal(c.eval.temperature, 0.7);
  assert.equal(c.eval.topP, 0.9);
  assert.equal(c.eval.repetitionPenalty, 1.2);
});

test('heart-phi3-mini: NF4 base, r16/alpha32, 3 epochs', () => {
  const c = load('heart-phi3-mini.yaml');
  assert.equal(c.model.quant, 'nf4');
  assert.equal(c.lora.r, 16);
  assert.equal(c.lora.loraAlpha, 32);
  assert.equal(c.training.epochs, 3);
  assert.equal(c.training.maxSteps, null);
});

test('alpacare-phi3-mini: r8/alpha32/dropout 0.05, 1 epoch, batch 1, accumulation 8, lr 2e-4, eval every 200', () => {
  const c = load('alpacare-phi3-mini.yaml');
  assert.equal(c.lora.r, 8);
  assert.equal(c.lora.loraAlpha, 32);
  assert.equal(c.lora.loraDropout, 0.05);
  assert.equal(c.training.epochs, 1);
  assert.equal(c.training.maxSteps, null);
  assert.equal(c.training.batchSize, 1);
  assert.equal(c.training.gradAccum, 8);
  assert.equal(c.training.lr, 2e-4);
  assert.equal(c.training.evalEvery, 200);
});
