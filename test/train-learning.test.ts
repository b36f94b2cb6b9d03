/**
 * Real learning: LoRA (r 8 on the four Phi-3 projections) on a tiny random Phi-3 with the real
 * tokenizer memorises four short answers — the answer-token loss must fall by more than half. The
 * base is random with a wide init (0.3) so that a frozen lm_head leaves the adapters room to move
 * the logits (with 0.02 a 32-wide head can shift a logit by < 1: FACTS.md, nano-scale learnability).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { phi3Tokenizer } from '../src/data/tokens.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { attachLora, loraVariables } from '../src/model/lora/model.ts';
import { PHI3_PAD_ID } from '../src/tokenizer/index.ts';
import { Rng } from '../src/util/random.ts';
import { encodeSample } from '../src/train/batching.ts';
import { train } from '../src/train/trainer.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

test('LoRA overfits a handful of samples: answer loss drops by more than 50%', async () => {
  const tok = await phi3Tokenizer();
  const cfg = { ...getPreset('phi3-nano'), hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 2, numKeyValueHeads: 2, initializerRange: 0.3 };
  const model = initPhi3(cfg, new Rng(1));
  attachLora(model, defineLoraConfig({ r: 8, loraAlpha: 16, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] }), new Rng(2));
  const frozen = model.getLinear('lm_head').weight();
  const frozenBefore = frozen.dataSync().slice();
  frozen.dispose();
  const samples = [
    { system: 'You are an auditor.', user: 'Report: sensitivity 0.91, specificity 0.88.', answer: 'Category: sound' },
    { system: 'You are an auditor.', user: 'Report: AUC 0.99 on 12 patients.', answer: 'Category: overfit' },
    { system: 'You are an auditor.', user: 'Report: accuracy 0.50 on balanced data.', answer: 'Category: chance' },
    { system: 'You are an auditor.', user: 'Report: test set used for tuning.', answer: 'Category: leakage' },
  ];
  const enc = samples.map((s) => encodeSample(s, tok, { maxLength: 64 }));
  const vals: number[] = [];
  const t0 = performance.now();
  const s = await train({
    model, train: enc, validation: enc, progress: false, handleSignals: false,
    config: { batchSize: 4, lr: 1e-2, maxSteps: 40, schedule: 'constant', weightDecay: 0, evalEvery: 20, padId: PHI3_PAD_ID, seed: 3 },
    callbacks: { onEval: (e) => void vals.push(e.valLoss) },
  });
  const ms = performance.now() - t0;
  const first = s.losses[0]!;
  const last = s.finalLoss!;
  assert.ok(last < 0.5 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)} in 40 steps (${(ms / 40).toFixed(0)} ms/step)`);
  assert.ok(vals.length === 2 && vals[1]! < 0.5 * first, `validation losses ${vals.join(', ')}`);
  // Only the adapters moved.
  const after = model.getLinear('lm_head').weight();
  assert.deepEqual(after.dataSync(), frozenBefore);
  after.dispose();
  assert.ok(loraVariables(model).some((v) => tf.tidy(() => tf.max(tf.abs(v)).dataSync()[0]!) > 0));
  model.dispose();
});
