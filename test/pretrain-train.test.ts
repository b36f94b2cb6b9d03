/**
 * Pretraining end to end on a tiny model: loss falls in 3 steps, the run is recorded, the model is
 * saved quantized and loads back with nearly the same loss; the config loader rejects bad keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.ts';
import { tf } from '../src/backend/tf.ts';
import { loadPretrainConfig } from '../src/pretrain/config.ts';
import { pretrain, sequenceLoss } from '../src/pretrain/train.ts';
import { loadBase } from '../src/pretrain/ship.ts';
import { cardInfoFromRun, writeModelCard } from '../src/pretrain/card.ts';
import { CliniloraError } from '../src/errors.ts';

const TINY = [
  'model.hiddenSize=32', 'model.intermediateSize=64', 'model.numHiddenLayers=1', 'model.numAttentionHeads=2',
  'corpus.auditorN=200', 'corpus.auditorProtectN=[]', 'corpus.freshReports=10', 'corpus.heartFreshPerPatient=0', 'corpus.glossaryDocs=10',
  'packing.seqLen=32', 'packing.validationSequences=2', 'packing.maxTrainSequences=8',
  'training.batchSize=2', 'training.maxSteps=3', 'training.lr=0.01', 'training.warmupRatio=0', 'training.evalEvery=0', 'training.checkpointEvery=0',
];

test('3 pretraining steps on a tiny model: loss falls, run recorded, saved model loads with the same loss', async () => {
  await initBackend({ backend: 'cpu' });
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-pretrain-'));
  try {
    const config = loadPretrainConfig(undefined, [...TINY, `output.dir=${join(dir, 'model')}`, `output.checkpointDir=${join(dir, 'ck')}`]);
    const before = tf.memory().numTensors;
    const r = await pretrain({ config, root: dir, progress: false });
    const l = r.summary.losses;
    assert.equal(r.summary.status, 'completed');
    assert.equal(l.length, 3);
    assert.ok(l[0]! > 9.5 && l[0]! < 11, `a random model starts near ln(32064): ${l[0]}`);
    assert.ok(l[2]! < l[0]! - 0.05, `loss did not fall: ${l.join(', ')}`);
    assert.equal(r.summary.tokens, 3 * 2 * 32);

    // The run record: kind train, every step logged, the model files as artifacts with sha256.
    const runFile = join(dir, 'experiments', 'runs', r.runId!, 'run.json');
    const rec = JSON.parse(readFileSync(runFile, 'utf8')) as { kind: string; name: string; status: string; steps: { step: number; loss: number }[]; artifacts: { path: string; sha256: string }[] };
    assert.equal(rec.kind, 'train');
    assert.equal(rec.name, 'base-phi3-nano');
    assert.equal(rec.status, 'completed');
    assert.deepEqual(rec.steps.map((s) => s.step), [1, 2, 3]);
    assert.ok(rec.artifacts.some((a) => a.path.endsWith('model.safetensors') && /^[0-9a-f]{64}$/.test(a.sha256)));

    // Saved: int8 block linears, F16 embed/head, tokenizer files; loads back with nearly the same loss.
    const saved = JSON.parse(readFileSync(join(dir, 'model', 'config.json'), 'utf8')) as { hidden_size: number; quantization_config?: { load_in_8bit: boolean; llm_int8_skip_modules: string[] } };
    assert.equal(saved.hidden_size, 32);
    assert.equal(saved.quantization_config?.load_in_8bit, true);
    assert.deepEqual(saved.quantization_config?.llm_int8_skip_modules, ['lm_head']);
    assert.ok(existsSync(join(dir, 'model', 'tokenizer.json')) && existsSync(join(dir, 'model', 'loss_curve.csv')));
    const v = r.validationLoss;
    assert.ok(v.saved !== undefined && Math.abs(v.saved - v.float) < 0.02, `float ${v.float} vs saved ${v.saved}`);
    // The card, rebuilt from the run record; refused when the corpus no longer matches the run's.
    const info = await cardInfoFromRun(config, dir);
    assert.equal(info.result.summary.tokens, 192);
    assert.deepEqual(info.result.summary.losses, l);
    writeModelCard(join(dir, 'model'), info);
    const card = readFileSync(join(dir, 'model', 'MODEL_CARD.md'), 'utf8');
    assert.ok(card.includes('**192 tokens seen**') && card.includes(r.runId!), 'card lacks the run numbers');
    const changed = loadPretrainConfig(undefined, [...TINY, 'corpus.glossaryDocs=11', `output.dir=${join(dir, 'model')}`, `output.checkpointDir=${join(dir, 'ck')}`]);
    await assert.rejects(cardInfoFromRun(changed, dir), /corpus built now differs/);

    const loaded = loadBase(join(dir, 'model'));
    assert.equal(loaded.getLinear('model.layers.0.mlp.down_proj').kind, 'int8');
    loaded.dispose();
    r.model.dispose();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without save or record: only the float validation loss; sequenceLoss is finite', async () => {
  await initBackend({ backend: 'cpu' });
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-pretrain-'));
  try {
    const config = loadPretrainConfig(undefined, [...TINY, 'training.maxSteps=1', `output.checkpointDir=${join(dir, 'ck')}`]);
    const r = await pretrain({ config, root: dir, progress: false, save: false, record: false });
    assert.ok(Number.isFinite(r.validationLoss.float));
    assert.equal(r.validationLoss.saved, undefined);
    const seq = Int32Array.from({ length: 32 }, (_, i) => 100 + (i % 7));
    assert.ok(Number.isFinite(sequenceLoss(r.model, [seq, seq])));
    r.model.dispose();
    // Its checkpoint is there: a fresh run into the same directory is refused, a resume is not.
    await assert.rejects(pretrain({ config, root: dir, progress: false, save: false, record: false }), /holds an earlier run/);
    const again = await pretrain({ config, root: dir, progress: false, save: false, record: false, resume: true });
    assert.deepEqual(again.summary.losses, r.summary.losses);
    assert.equal(again.validationLoss.float, r.validationLoss.float, 'resumed weights differ');
    again.model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: the shipped file loads; an unknown key or a wrong type names the key and file', () => {
  const c = loadPretrainConfig('experiments/base/phi3-nano.yaml');
  assert.equal(c.model.preset, 'phi3-nano');
  assert.equal(c.packing.seqLen, 256);
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-pretrain-cfg-'));
  try {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'training:\n  lr: 1e-3\n  batchSzie: 4\n');
    assert.throws(() => loadPretrainConfig(bad), (e: unknown) => e instanceof CliniloraError && e.message.includes('training.batchSzie') && (e.details.file ?? '').includes('bad.yaml'));
    writeFileSync(bad, 'training:\n  maxSteps: many\n');
    assert.throws(() => loadPretrainConfig(bad), (e: unknown) => e instanceof CliniloraError && e.message.includes('training.maxSteps'));
    assert.throws(() => loadPretrainConfig(undefined, ['packing.seqLen=-3']), /packing\.seqLen/);
    assert.equal(loadPretrainConfig(undefined, ['training.lr=0.5']).training.lr, 0.5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
