/**
 * `generate` on a tiny random Phi-3 (cpu backend) against a naive decoder that runs the full
 * forward over the whole sequence each step (no cache, no padding) and applies the same processing.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { Rng } from '../src/util/random.ts';
import { generate, generateGreedy, GENERATION_PRESETS, type GenerateOptions } from '../src/model/generate.ts';
import { nextToken } from '../src/model/sampling.ts';

const config: PhiConfig = {
  ...getPreset('phi3-nano'),
  vocabSize: 48,
  hiddenSize: 16,
  intermediateSize: 24,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  padTokenId: 0,
  initializerRange: 0.5, // spread-out logits: no near-ties that float noise could flip
};
let model: Phi3ForCausalLM;
const prompts = [[5, 9, 14, 3, 7], [22, 7], [30, 31, 2]];

before(async () => {
  await initBackend({ backend: 'cpu' });
  model = initPhi3(config, new Rng(11));
});

function lastLogits(seq: number[]): Float32Array {
  const l = model.forward([seq]);
  const V = config.vocabSize;
  const d = (l.dataSync() as Float32Array).slice((seq.length - 1) * V, seq.length * V);
  l.dispose();
  return d;
}

/** One row decoded with full forwards; rng null = greedy. */
function naive(prompt: number[], opts: GenerateOptions, rng: Rng | null): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  const stop = new Set(opts.stopIds ?? []);
  for (let i = 0; i < opts.maxNewTokens; i++) {
    const t = nextToken(lastLogits(seq), seq, opts, rng);
    if (stop.has(t)) break;
    out.push(t);
    seq.push(t);
  }
  return out;
}

const argmaxRow = (prompt: number[], n: number): number[] => {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const x = lastLogits(seq);
    seq.push(x.indexOf(Math.max(...x)));
  }
  return seq.slice(prompt.length);
};

test('greedy equals argmax of the full forward at each step, batched with left padding', () => {
  const got = generate(model, prompts, { maxNewTokens: 6, greedy: true, stopIds: [] });
  assert.deepEqual(got.map((g) => g.tokens), prompts.map((p) => argmaxRow(p, 6)));
  assert.deepEqual(got.map((g) => g.finish), ['length', 'length', 'length']);
  assert.deepEqual(generateGreedy(model, prompts, 6).map((g) => g.tokens), got.map((g) => g.tokens));
});

test('temperature → 0 and top-k = 1 sampling equal greedy', () => {
  const greedy = generate(model, prompts, { maxNewTokens: 6, greedy: true, stopIds: [] }).map((g) => g.tokens);
  assert.deepEqual(generate(model, prompts, { maxNewTokens: 6, temperature: 1e-5, seed: 1, stopIds: [] }).map((g) => g.tokens), greedy);
  assert.deepEqual(generate(model, prompts, { maxNewTokens: 6, topK: 1, temperature: 1.5, seed: 2, stopIds: [] }).map((g) => g.tokens), greedy);
  assert.deepEqual(generate(model, prompts, { maxNewTokens: 6, temperature: 0, stopIds: [] }).map((g) => g.tokens), greedy);
});

test('repetition penalty in greedy decoding matches the naive decoder and changes the output', () => {
  const opts: GenerateOptions = { maxNewTokens: 8, greedy: true, repetitionPenalty: 3, stopIds: [] };
  const got = generate(model, prompts, opts).map((g) => g.tokens);
  assert.deepEqual(got, prompts.map((p) => naive(p, opts, null)));
  assert.notDeepEqual(got, generate(model, prompts, { ...opts, repetitionPenalty: 1 }).map((g) => g.tokens));
});

test('seeded sampling: same seed → same tokens; another seed → different; batched equals per-row with the same streams', () => {
  const opts = { ...GENERATION_PRESETS.auditorSeed, maxNewTokens: 10, temperature: 1.3, topK: 0, stopIds: [] };
  const a = generate(model, prompts, { ...opts, seed: 7 }).map((g) => g.tokens);
  assert.deepEqual(generate(model, prompts, { ...opts, seed: 7 }).map((g) => g.tokens), a);
  assert.notDeepEqual(generate(model, prompts, { ...opts, seed: 8 }).map((g) => g.tokens), a);
  // One Rng advances: two calls on it differ.
  const shared = new Rng(3).split('sampling');
  assert.notDeepEqual(generate(model, prompts, { ...opts, rng: shared }).map((g) => g.tokens), generate(model, prompts, { ...opts, rng: shared }).map((g) => g.tokens));
  // Per-row streams: the batch equals each row alone, and equals the naive decoder with that stream.
  const streams = (): Rng[] => prompts.map((_, i) => new Rng(100 + i));
  const batched = generate(model, prompts, { ...opts, rng: streams() }).map((g) => g.tokens);
  const single = prompts.map((p, i) => generate(model, [p], { ...opts, rng: [streams()[i]!] })[0]!.tokens);
  assert.deepEqual(batched, single);
  assert.deepEqual(batched, prompts.map((p, i) => naive(p, opts, streams()[i]!)));
  assert.ok(new Set(batched.flat()).size > 5, 'sampling at temperature 1.3 spreads over the vocabulary');
});

test('rows stop on their stop id (not included) while others continue', () => {
  const free = prompts.map((p) => argmaxRow(p, 6));
  // A token of row 0 first generated at step k ≥ 2.
  const k = free[0]!.findIndex((t, i) => i >= 2 && free[0]!.indexOf(t) === i);
  assert.ok(k >= 2, `row 0 has a new token after step 2: ${free[0]}`);
  const stopTok = free[0]![k]!;
  const got = generate(model, prompts, { maxNewTokens: 6, greedy: true, stopIds: [stopTok] });
  assert.equal(got[0]!.finish, 'stop');
  assert.equal(got[0]!.stopId, stopTok);
  assert.deepEqual(got[0]!.tokens, free[0]!.slice(0, k));
  assert.ok(got.some((g) => g.finish === 'length'), 'another row runs to the length limit');
  prompts.forEach((p, i) => assert.deepEqual(got[i]!.tokens, naive(p, { maxNewTokens: 6, stopIds: [stopTok] }, null)));
  const streamed: Array<[number, number]> = [];
  generate(model, prompts, { maxNewTokens: 6, greedy: true, stopIds: [stopTok], onToken: (r, t) => streamed.push([r, t]) });
  assert.deepEqual(streamed.filter(([r]) => r === 0).map(([, t]) => t), got[0]!.tokens);
});

test('no tensor leaks over a generation; bad arguments name the field', () => {
  generate(model, prompts, { maxNewTokens: 2, seed: 1, stopIds: [] }); // warm-up (lazy tables)
  const before = tf.memory().numTensors;
  generate(model, prompts, { maxNewTokens: 12, temperature: 0.8, topP: 0.9, repetitionPenalty: 1.2, seed: 1, stopIds: [] });
  generate(model, prompts, { maxNewTokens: 5, greedy: true });
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => generate(model, [[]], { maxNewTokens: 2 }), /prompts/);
  assert.throws(() => generate(model, prompts, { maxNewTokens: 2, rng: [new Rng(1)] }), /rng/);
  assert.throws(() => generate(model, prompts, { maxNewTokens: 1e6 }), /maxNewTokens/);
  assert.deepEqual(GENERATION_PRESETS.auditorSeed, { maxNewTokens: 400, temperature: 0.7, topP: 0.9, topK: 50, repetitionPenalty: 1.2 });
});
