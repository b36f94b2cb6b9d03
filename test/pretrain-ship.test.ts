/**
 * The shipped base (models/phi3-nano): small enough for git, int8 block linears, loads, gives finite
 * logits, and is trained (it predicts an auditor prompt far better than a random model would).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.ts';
import { tf } from '../src/backend/tf.ts';
import { loadBase } from '../src/pretrain/ship.ts';
import { sequenceLoss } from '../src/pretrain/train.ts';
import { phi3Tokenizer } from '../src/data/index.ts';
import { AUDITOR_SYSTEM, AUDITOR_INSTRUCTION } from '../src/data/auditor/index.ts';
import { applyChatTemplate } from '../src/tokenizer/chat.ts';

const DIR = 'models/phi3-nano';
const shipped = existsSync(join(DIR, 'model.safetensors'));
const skip = shipped ? false : `${DIR} is not there yet: run node --import tsx src/pretrain/main.ts --config experiments/base/phi3-nano.yaml`;

test('the folder is under 40 MB, HF layout, int8 block linears, with a model card', { skip }, () => {
  const files = readdirSync(DIR);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'MODEL_CARD.md', 'README.md']) assert.ok(files.includes(f), `${f} missing`);
  const bytes = files.reduce((a, f) => a + statSync(join(DIR, f)).size, 0);
  assert.ok(bytes < 40e6, `${bytes} bytes`);
  const cfg = JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(cfg['architectures'], ['Phi3ForCausalLM']);
  assert.equal(cfg['vocab_size'], 32064);
  const q = cfg['quantization_config'] as { load_in_8bit: boolean; llm_int8_skip_modules: string[] };
  assert.equal(q.load_in_8bit, true);
  assert.deepEqual(q.llm_int8_skip_modules, ['lm_head']);
  const card = readFileSync(join(DIR, 'MODEL_CARD.md'), 'utf8');
  for (const s of ['Not for clinical use', 'tokens seen', 'CC BY-NC 4.0', 'experiments/runs/']) assert.ok(card.includes(s), `card lacks "${s}"`);
});

test('it loads, gives finite logits, and reads an auditor prompt far better than chance', { skip }, async () => {
  await initBackend({ backend: 'cpu' });
  const before = tf.memory().numTensors;
  const model = loadBase(DIR);
  try {
    assert.equal(model.getLinear('model.layers.0.self_attn.qkv_proj').kind, 'int8');
    const tok = await phi3Tokenizer();
    const report = '{"auc":0.812,"accuracy":0.774,"precision":0.402,"recall":0.655,"f1":0.498,"ece":0.041,"brier":0.151,"drift":0.032,"missing_rate":0.004,"label_shift":0.012,"pos_rate":0.181,"data_integrity_issues":0}';
    const text = applyChatTemplate([{ role: 'system', content: AUDITOR_SYSTEM }, { role: 'user', content: `${AUDITOR_INSTRUCTION}\n\nReport:\n${report}` }]);
    const ids = Int32Array.from(tok.encode(text, { parseSpecial: true }));
    const logits = model.forward({ data: ids, shape: [1, ids.length] }, { lastOnly: true });
    const v = logits.dataSync();
    logits.dispose();
    assert.equal(v.length, 32064);
    assert.ok(v.every((x) => Number.isFinite(x)), 'non-finite logit');
    const loss = sequenceLoss(model, [ids], 1);
    // A random model scores ln(32064) ≈ 10.4 nats/token; the prompt's template and keys are learnt.
    assert.ok(loss < 3, `loss on an auditor prompt ${loss.toFixed(3)}`);
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
