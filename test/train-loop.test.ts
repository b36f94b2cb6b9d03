/**
 * The loop's control logic: early stopping with patience on the validation loss (a scripted
 * validation loss through the swappable loss function; training uses the real gradient), keeping and
 * restoring the best weights, the final checkpoint, callback order, and the progress display on a
 * TTY and off one.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { attachLora, loraVariables } from '../src/model/lora/model.ts';
import { Rng } from '../src/util/random.ts';
import type { EncodedSample } from '../src/train/batching.ts';
import { answerLoss, train } from '../src/train/trainer.ts';
import { progressCallbacks } from '../src/train/progress.ts';
import type { StepInfo } from '../src/train/callbacks.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

function synthetic(n: number, seed: number): EncodedSample[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 6 + r.int(8);
    return { ids: Int32Array.from({ length: len }, () => r.int(32000)), labels: new Uint8Array(len).fill(1, len - 3), promptLength: len - 3, answerLength: 3, truncated: 'none' as const };
  });
}

test('early stopping: patience counts evaluations without improvement; best weights kept and restored', async () => {
  const cfg = { ...getPreset('phi3-nano'), hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 };
  const model = initPhi3(cfg, new Rng(1));
  attachLora(model, defineLoraConfig({ r: 4, loraAlpha: 8 }), new Rng(2));
  const real = answerLoss(model);
  const script = [3, 2, 2.5, 1.999, 2.1, 2.2, 1.0];
  let evals = 0;
  const events: string[] = [];
  let bestAtStep: Float32Array[] = [];
  const root = mkdtempSync(join(tmpdir(), 'clinilora-early-'));
  const s = await train({
    model, train: synthetic(4, 3), validation: synthetic(2, 4), progress: false, handleSignals: false, checkpointDir: root,
    loss: (b, ctx) => (ctx.training ? real(b, ctx) : tf.scalar(script[evals++]!)),
    config: { batchSize: 2, lr: 5e-2, maxSteps: 20, evalEvery: 1, evalBatchSize: 8, patience: 2, minDelta: 0.01, padId: 32000, seed: 1 },
    callbacks: {
      onStart: () => void events.push('start'),
      onEval: (e) => void events.push(`eval ${e.step} ${e.improved ? 'better' : `bad ${e.badEvals}`}`),
      onBest: (b) => { bestAtStep = b.weights.map(([, w]) => w); events.push(`best ${b.step}`); },
      onCheckpoint: (c) => void events.push(`checkpoint ${c.step}`),
      onEnd: (x) => void events.push(`end ${x.status}`),
    },
  });
  // 1.999 is not better than 2 by minDelta 0.01: evals 3 and 4 are both bad → stop at step 4.
  assert.equal(s.status, 'early-stopped');
  assert.equal(s.step, 4);
  assert.equal(s.bestStep, 2);
  assert.equal(s.bestValLoss, 2);
  assert.deepEqual(events, ['start', 'eval 1 better', 'best 1', 'eval 2 better', 'best 2', 'eval 3 bad 1', 'eval 4 bad 2', 'checkpoint 4', 'end early-stopped']);
  assert.ok(s.restoredBest);
  const now = loraVariables(model).map((v) => v.dataSync());
  now.forEach((w, i) => assert.deepEqual(w, bestAtStep[i]));
  assert.ok(existsSync(join(root, 'step-0000004', 'best.safetensors')));
  assert.ok(s.losses.every((l) => Number.isFinite(l) && l > 5), 'real training losses');
  model.dispose();
});

function info(step: number, total: number): StepInfo {
  return { step, loss: 2.5, lr: 1e-4, gradNorm: 1, tokensPerSec: 1234, tokens: step * 100, elapsedMs: step * 1000, stepMs: 1000, epoch: 0, totalSteps: total };
}

test('progress: one rewritten line on a TTY; plain lines every K steps otherwise', async () => {
  let tty = '';
  const p = progressCallbacks({ stream: { write: (s: string) => (tty += s), isTTY: true } });
  p.onStart!({ startStep: 0, totalSteps: 10, batchesPerEpoch: 5, configHash: 'x' });
  for (let i = 1; i <= 3; i++) await p.onStepEnd!(info(i, 10));
  assert.equal(tty.split('\r\x1b[2K').length, 4);
  assert.ok(!tty.includes('\n'), 'no new lines while stepping');
  assert.match(tty, /step 3\/10 loss 2\.5000 lr 1\.00e-4 1234 tok\/s eta 7s$/);

  let plain = '';
  const q = progressCallbacks({ stream: { write: (s: string) => (plain += s), isTTY: false }, every: 4 });
  q.onStart!({ startStep: 0, totalSteps: 10, batchesPerEpoch: 5, configHash: 'x' });
  for (let i = 1; i <= 10; i++) await q.onStepEnd!(info(i, 10));
  const lines = plain.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ')[1]), ['4/10', '8/10', '10/10']);
  assert.ok(!plain.includes('\r') && !plain.includes('\x1b'));
});
