/**
 * Reading numbers from token probabilities on tiny random models with the real Phi-3 vocabulary
 * (cpu backend): the heart-risk probability (shape, normalisation, a uniform model's hand-worked
 * value 0.5) and teacher-forced answer NLLs (a uniform model gives ln V per token).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { randomWeights } from '../src/model/init.ts';
import { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { Rng } from '../src/util/random.ts';
import { Phi3Tokenizer, defaultTokenizerPath } from '../src/tokenizer/index.ts';
import { answerNlls, riskProbabilityFromModel, RISK_LEVELS } from '../src/eval/model-probs.ts';
import { perplexity } from '../src/eval/text-metrics.ts';

const config: PhiConfig = {
  ...getPreset('phi3-nano'),
  hiddenSize: 16,
  intermediateSize: 24,
  numHiddenLayers: 1,
  numAttentionHeads: 2,
  numKeyValueHeads: 2,
  initializerRange: 0.3,
};
let tok: Phi3Tokenizer;
let random: Phi3ForCausalLM;
let uniform: Phi3ForCausalLM;
let prompt: number[];

const close = (a: number, b: number, what = '', tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

before(async () => {
  await initBackend({ backend: 'cpu' });
  tok = await Phi3Tokenizer.fromGguf(defaultTokenizerPath());
  random = Phi3ForCausalLM.fromWeights(config, randomWeights(config, new Rng(5).split('init')));
  // lm_head all zero: every logit 0, the next-token distribution is uniform.
  const base = randomWeights(config, new Rng(6).split('init'));
  uniform = Phi3ForCausalLM.fromWeights(config, (name) => (name === 'lm_head.weight' ? new Float32Array(config.vocabSize * config.hiddenSize) : base(name)));
  prompt = tok.encodeChat([{ role: 'system', content: 'Assess the risk.' }, { role: 'user', content: 'Age 75, ejection fraction 20%.' }], { addGenerationPrompt: true });
});

test('uniform model: levels 1/3 each, digits 1/10 each, probability 0.5, mass 3/V', () => {
  const r = riskProbabilityFromModel(uniform, prompt, tok);
  for (const l of RISK_LEVELS) {
    close(r.levels[l], 1 / 3, `P(${l})`);
    r.digits[l].forEach((p, d) => close(p, 0.1, `P(${d}|${l})`));
    close(r.mass.digits[l], 10 / config.vocabSize, `digit mass ${l}`, 1e-9);
  }
  close(r.probability, 0.5, 'probability'); // Σ_d 0.1 · (d + 0.5)/10 = 0.5
  close(r.mass.levels, 3 / config.vocabSize, 'level mass', 1e-9);
});

test('random model: probabilities in [0, 1], normalised, level probabilities equal a plain full forward', () => {
  const before = tf.memory().numTensors;
  const r = riskProbabilityFromModel(random, prompt, tok);
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.probability >= 0.05 && r.probability <= 0.95, `probability ${r.probability}`);
  close(RISK_LEVELS.reduce((a, l) => a + r.levels[l], 0), 1, 'levels sum');
  for (const l of RISK_LEVELS) {
    close(r.digits[l].reduce((a, b) => a + b, 0), 1, `digits sum ${l}`);
    assert.ok(r.digits[l].every((p) => p >= 0 && p <= 1));
  }
  assert.ok(new Set(RISK_LEVELS.map((l) => r.levels[l].toFixed(6))).size > 1, 'a random model does not give equal levels');
  // Independent check of P(level): full forward over prompt + "Risk:" (ids from the tokenizer's
  // rendering "<|assistant|>Risk: low" minus the generation prompt), softmax at the last position.
  const gen = tok.encode('<|assistant|>\n', { parseSpecial: true });
  const after = (s: string): number[] => tok.encode(`<|assistant|>\n${s}`, { parseSpecial: true }).slice(gen.length);
  const ctx = [...prompt, ...after('Risk:')];
  const logits = random.forward([ctx]);
  const V = config.vocabSize;
  const last = Array.from((logits.dataSync() as Float32Array).slice((ctx.length - 1) * V));
  logits.dispose();
  const max = Math.max(...last);
  const z = last.reduce((a, x) => a + Math.exp(x - max), 0);
  const p = (id: number): number => Math.exp(last[id]! - max) / z;
  const first = RISK_LEVELS.map((l) => after(`Risk: ${l}`)[after('Risk:').length]!);
  const sum = first.reduce((a, id) => a + p(id), 0);
  RISK_LEVELS.forEach((l, i) => close(r.levels[l], p(first[i]!) / sum, `P(${l}) vs full forward`, 1e-5));
  assert.throws(() => riskProbabilityFromModel(random, prompt.slice(0, -1), tok), /promptIds/);
});

test('answer NLLs: a uniform model gives ln V per token; a random one matches a plain log-softmax', () => {
  const answer = tok.encode('Risk: low (probability 0.12)');
  const u = answerNlls(uniform, prompt, answer);
  assert.equal(u.length, answer.length);
  u.forEach((x) => close(x, Math.log(config.vocabSize), 'uniform NLL', 1e-4));
  close(perplexity(u), config.vocabSize, 'perplexity', 0.5);
  const r = answerNlls(random, prompt, answer);
  const seq = [...prompt, ...answer];
  const logits = random.forward([seq]);
  const V = config.vocabSize;
  const d = logits.dataSync() as Float32Array;
  logits.dispose();
  answer.forEach((id, j) => {
    const row = Array.from(d.slice((prompt.length + j - 1) * V, (prompt.length + j) * V));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
    close(r[j]!, lse - row[id]!, `NLL[${j}]`, 1e-4);
  });
  assert.throws(() => answerNlls(random, prompt, []), /answerIds/);
});
