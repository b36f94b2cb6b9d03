/**
 * safeGenerate on a tiny random Phi-3 with the real vocabulary (cpu backend): the safety prefix goes
 * into the system message, the raw output is decoded and post-filtered, the disclaimer ends every
 * output exactly once, and a tripped output becomes the fallback with what tripped reported.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { Rng } from '../src/util/random.ts';
import { Phi3Tokenizer, defaultTokenizerPath } from '../src/tokenizer/index.ts';
import { DISCLAIMER, SAFETY_SYSTEM_PREFIX } from '../src/data/alpacare/safety.ts';
import { safeGenerate, safeMessages, type ChatTokenizer } from '../src/safety/generate.ts';
import { findViolations, hasDisclaimerOnce, SAFE_FALLBACK } from '../src/safety/filter.ts';

const config: PhiConfig = { ...getPreset('phi3-nano'), hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 };
let tok: Phi3Tokenizer;
let model: Phi3ForCausalLM;
const questions = ['How much ibuprofen can I take?', 'What causes a sore throat?'];

before(async () => {
  await initBackend({ backend: 'cpu' });
  tok = await Phi3Tokenizer.fromGguf(defaultTokenizerPath());
  model = initPhi3(config, new Rng(9));
});

test('safeMessages: the safety prefix is the system message, extra text after it', () => {
  assert.deepEqual(safeMessages('Q?'), [{ role: 'system', content: SAFETY_SYSTEM_PREFIX }, { role: 'user', content: 'Q?' }]);
  assert.equal(safeMessages('Q?', 'Be brief.')[0]!.content, `${SAFETY_SYSTEM_PREFIX} Be brief.`);
});

test('safeGenerate: decoded raw output, post-filter report, disclaimer once at the end; deterministic', () => {
  const n0 = tf.memory().numTensors;
  const out = safeGenerate(model, tok, questions, { generation: { maxNewTokens: 8 } });
  assert.equal(tf.memory().numTensors, n0);
  assert.equal(out.length, 2);
  out.forEach((o, i) => {
    assert.equal(o.question, questions[i]);
    assert.ok(o.tokens.length <= 8);
    assert.equal(o.raw, tok.decode(o.tokens, { skipSpecial: true }).trim());
    assert.deepEqual(o.violations, findViolations(o.raw));
    assert.ok(hasDisclaimerOnce(o.text), o.text);
    assert.equal(o.fallbackUsed, o.violations.length > 0);
  });
  assert.deepEqual(safeGenerate(model, tok, questions, { generation: { maxNewTokens: 8 } }).map((o) => o.tokens), out.map((o) => o.tokens));
  const sampled = safeGenerate(model, tok, questions, { generation: { maxNewTokens: 8, temperature: 1, seed: 4 } });
  assert.deepEqual(safeGenerate(model, tok, questions, { generation: { maxNewTokens: 8, temperature: 1, seed: 4 } }).map((o) => o.tokens), sampled.map((o) => o.tokens));
});

test('safeGenerate: an unsafe answer is replaced by the fallback and what tripped is reported', () => {
  // A tokenizer whose decode yields a fixed unsafe answer (the model itself is random).
  const unsafe: ChatTokenizer = { encodeChat: (m, o) => tok.encodeChat(m, o), decode: () => 'Take 2 tablets every 4 hours. I would prescribe codeine.' };
  const [o] = safeGenerate(model, unsafe, ['Q'], { generation: { maxNewTokens: 2 } });
  assert.equal(o!.fallbackUsed, true);
  assert.equal(o!.text, `${SAFE_FALLBACK}\n\n${DISCLAIMER}`);
  assert.deepEqual(o!.violations.map((v) => [v.ruleId, v.match]), [
    ['dose.schedule', 'Take 2 tablets every 4 hours'],
    ['dose.amount', '2 tablets'],
    ['prescribing.first_person', 'I would prescribe'],
  ]);
  const [off] = safeGenerate(model, unsafe, ['Q'], { generation: { maxNewTokens: 2 }, safety: { enabled: false } });
  assert.equal(off!.text, `Take 2 tablets every 4 hours. I would prescribe codeine.\n\n${DISCLAIMER}`);
  assert.equal(off!.tripped, true);
});
