/**
 * Checkpoint and resume on a tiny random Phi-3 with LoRA (wasm backend): 6 steps straight versus 3
 * steps + checkpoint + a brand-new model and optimizer resumed from it + 3 steps give the same
 * losses (===), the same validation losses and the same final weights, with dropout on in the model
 * and the adapters, gradient accumulation and epochs crossing. A checkpoint of another config is
 * refused with nothing changed. The tensor count stays flat over steps.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { attachLora, loraVariables } from '../src/model/lora/model.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { Rng } from '../src/util/random.ts';
import type { EncodedSample } from '../src/train/batching.ts';
import { train, type TrainConfig, type TrainOptions } from '../src/train/trainer.ts';
import type { TrainState } from '../src/train/checkpoint.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const CFG = { ...getPreset('phi3-nano'), hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, residPdrop: 0.1, attentionDropout: 0.1 };
const LORA = defineLoraConfig({ r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: ['qkv_proj', 'o_proj', 'down_proj'] });

function makeModel(): Phi3ForCausalLM {
  const model = initPhi3(CFG, new Rng(1));
  attachLora(model, LORA, new Rng(1).split('lora'));
  return model;
}

function synthetic(n: number, seed: number): EncodedSample[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 8 + r.int(16);
    const ids = Int32Array.from({ length: len }, () => r.int(32000));
    const p = len - 4;
    return { ids, labels: new Uint8Array(len).fill(1, p), promptLength: p, answerLength: 4, truncated: 'none' as const };
  });
}

const TRAIN = synthetic(6, 11); // batch 2 → 3 batches an epoch; accumulation 2 → epochs cross mid-step
const VAL = synthetic(3, 12);
const CONFIG: TrainConfig = {
  batchSize: 2, gradAccumulation: 2, maxSteps: 6, lr: 2e-2, schedule: 'cosine', warmupRatio: 0.2, weightDecay: 0.01,
  maxGradNorm: 0.5, evalEvery: 2, patience: 10, padId: 32000, seed: 5,
};

function options(model: Phi3ForCausalLM, extra: Partial<TrainOptions> = {}): TrainOptions {
  return { model, train: TRAIN, validation: VAL, config: CONFIG, runConfig: { lora: LORA }, progress: false, handleSignals: false, ...extra };
}

const weightsOf = (m: Phi3ForCausalLM): Float32Array[] => loraVariables(m).map((v) => v.dataSync() as Float32Array);

test('a resumed run repeats the never-stopped run exactly (losses ===, val losses, weights)', async () => {
  const straight = makeModel();
  const valA = new Map<number, number>();
  const a = await train(options(straight, { callbacks: { onEval: (e) => void valA.set(e.step, e.valLoss) }, restoreBest: false }));
  assert.equal(a.status, 'completed');
  assert.equal(a.losses.length, 6);

  const root = mkdtempSync(join(tmpdir(), 'clinilora-resume-'));
  const first = makeModel();
  const ctl = new AbortController();
  const interrupts: number[] = [];
  const b1 = await train(options(first, {
    checkpointDir: root, abortSignal: ctl.signal,
    callbacks: { onStepEnd: (i) => { if (i.step === 3) ctl.abort(); }, onInterrupt: (i) => void interrupts.push(i.step) },
  }));
  assert.equal(b1.status, 'interrupted');
  assert.equal(b1.step, 3);
  assert.deepEqual(interrupts, [3]);
  const dir = join(root, 'step-0000003');
  assert.equal(b1.lastCheckpoint, dir);
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as TrainState;
  assert.equal(state.step, 3);
  assert.deepEqual(Object.keys(state.rng).sort(), ['dropout', 'lora:model.layers.0.mlp.down_proj', 'lora:model.layers.0.self_attn.o_proj', 'lora:model.layers.0.self_attn.qkv_proj', 'shuffle']);
  assert.equal(state.epoch, 1, '6 micro-batches, 3 an epoch: the second epoch is just used up');
  assert.ok(state.epochPlan !== null && state.batchIndex === state.epochPlan.length);
  first.dispose();

  const fresh = makeModel(); // new variables, new optimizer, new random streams
  const valB = new Map<number, number>();
  const resumedLosses: number[] = [];
  const b2 = await train(options(fresh, {
    resumeFrom: dir, restoreBest: false,
    callbacks: { onStepEnd: (i) => void resumedLosses.push(i.loss), onEval: (e) => void valB.set(e.step, e.valLoss) },
  }));
  assert.equal(b2.status, 'completed');
  assert.equal(resumedLosses.length, 3);
  for (let s = 0; s < 6; s++) assert.ok(b2.losses[s] === a.losses[s], `step ${s + 1}: ${b2.losses[s]} !== ${a.losses[s]}`);
  for (let s = 0; s < 3; s++) assert.ok(resumedLosses[s] === a.losses[s + 3], `resumed step ${s + 4}`);
  for (const step of [4, 6]) assert.ok(valB.get(step) === valA.get(step), `val loss at ${step}`);
  assert.equal(b2.bestStep, a.bestStep);
  assert.ok(b2.bestValLoss === a.bestValLoss);
  const wa = weightsOf(straight);
  const wb = weightsOf(fresh);
  wa.forEach((w, i) => assert.deepEqual(wb[i], w));
  // The loss moved: this is not a run that does nothing.
  assert.notEqual(a.losses[5], a.losses[0]);
  straight.dispose();

  // Another config: a clear error; the checkpoint, the directory and the model stay as they were.
  const before = readdirSync(root).sort();
  const files = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))] as const);
  const other = makeModel();
  const w0 = weightsOf(other).map((w) => w.slice());
  await assert.rejects(
    train(options(other, { resumeFrom: dir, checkpointDir: root, config: { ...CONFIG, lr: 1e-3 } })),
    (e: unknown) => e instanceof CliniloraError && e.code === 'E_CONFIG' && /another config/.test(e.message) && e.message.includes(state.configHash),
  );
  assert.deepEqual(readdirSync(root).sort(), before);
  for (const [f, bytes] of files) assert.deepEqual(readFileSync(join(dir, f)), bytes, f);
  weightsOf(other).forEach((w, i) => assert.deepEqual(w, w0[i]));
  other.dispose();
  fresh.dispose();
});

test('the tensor count stays flat over 10 steps and returns to where it was', async () => {
  const model = makeModel();
  const counts: number[] = [];
  const before = tf.memory().numTensors;
  const s = await train(options(model, {
    config: { ...CONFIG, maxSteps: 10, evalEvery: 3 },
    callbacks: { onStepEnd: () => void counts.push(tf.memory().numTensors) },
  }));
  assert.equal(s.step, 10);
  assert.equal(counts.length, 10);
  assert.ok(counts.every((c) => c === counts[0]), `tensor counts per step: ${counts.join(' ')}`);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});
