/**
 * The logit processors and the sampler on hand-worked vectors (no model): repetition penalty as HF,
 * temperature, top-k, top-p's smallest set with mass ≥ p, seeded draws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/util/random.ts';
import {
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  argmax,
  nextToken,
  processLogits,
  sampleFrom,
  softmax,
} from '../src/model/sampling.ts';

const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);
const close = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('repetition penalty: positive logits divided, negative multiplied, only present ids, once each', () => {
  const x = applyRepetitionPenalty(f32([2, -1, 0.5, 3, -4]), [0, 1, 1, 4, 99], 2);
  // id 0: 2/2 = 1; id 1: -1·2 = -2 (counted once although present twice); id 4: -4·2 = -8; 2 and 3 untouched; 99 out of range ignored.
  assert.deepEqual(Array.from(x), [1, -2, 0.5, 3, -8]);
  assert.deepEqual(Array.from(applyRepetitionPenalty(f32([2, -1]), [0, 1], 1)), [2, -1]);
  assert.throws(() => applyRepetitionPenalty(f32([1]), [0], 0), /repetitionPenalty/);
});

test('temperature divides the logits; ≤ 0 is refused when sampling', () => {
  assert.deepEqual(Array.from(applyTemperature(f32([1, -2, 4]), 0.5)), [2, -4, 8]);
  assert.throws(() => applyTemperature(f32([1]), 0), /temperature/);
});

test('top-k keeps the k largest (ties at the k-th value kept), the rest -Infinity', () => {
  assert.deepEqual(Array.from(applyTopK(f32([1, 5, 3, 4, 2]), 2)), [-Infinity, 5, -Infinity, 4, -Infinity]);
  assert.deepEqual(Array.from(applyTopK(f32([1, 3, 3, 0]), 2)), [-Infinity, 3, 3, -Infinity]);
  assert.deepEqual(Array.from(applyTopK(f32([1, 2]), 0)), [1, 2]);
});

test('top-p keeps the smallest set of most likely tokens with mass ≥ p (hand-worked)', () => {
  // Probabilities 0.5, 0.25, 0.15, 0.1 (logits = ln p).
  const logits = (): Float32Array => f32([Math.log(0.1), Math.log(0.5), Math.log(0.15), Math.log(0.25)]);
  const kept = (p: number): number[] => Array.from(applyTopP(logits(), p)).flatMap((v, i) => (v === -Infinity ? [] : [i])).sort();
  assert.deepEqual(kept(0.4), [1]); // 0.5 ≥ 0.4
  assert.deepEqual(kept(0.6), [1, 3]); // 0.5 < 0.6 ≤ 0.75
  assert.deepEqual(kept(0.8), [1, 2, 3]); // 0.75 < 0.8 ≤ 0.9
  assert.deepEqual(kept(0.95), [0, 1, 2, 3]);
  assert.deepEqual(kept(0.01), [1]); // the most likely token always stays
  assert.deepEqual(kept(1), [0, 1, 2, 3]);
  // The kept logits are unchanged.
  close(applyTopP(logits(), 0.6)[3]!, Math.log(0.25));
});

test('processing order is penalty → temperature → top-k → top-p', () => {
  // Penalty 2 on id 0 turns 4 into 2; temperature 2 halves: [1, 1.5, 0.5, -1]; top-k 3 drops id 3;
  // top-p 0.5: softmax over [1, 1.5, 0.5] = [0.307, 0.506, 0.186] → keeps id 1 only.
  const x = processLogits(f32([4, 3, 1, -2]), [0], { repetitionPenalty: 2, temperature: 2, topK: 3, topP: 0.5 }, true);
  assert.deepEqual(Array.from(x), [-Infinity, 1.5, -Infinity, -Infinity]);
  // Greedy: only the penalty applies.
  assert.deepEqual(Array.from(processLogits(f32([4, 3, 1, -2]), [0], { repetitionPenalty: 2, temperature: 2, topK: 1 }, false)), [2, 3, 1, -2]);
});

test('softmax, argmax and seeded draws', () => {
  const p = softmax(f32([0, Math.log(3), -Infinity]));
  close(p[0]!, 0.25);
  close(p[1]!, 0.75);
  assert.equal(p[2], 0);
  assert.equal(argmax([1, 7, 7, 2]), 1);
  const draws = (seed: number): number[] => {
    const r = new Rng(seed);
    return Array.from({ length: 200 }, () => sampleFrom(p, r));
  };
  assert.deepEqual(draws(5), draws(5));
  assert.notDeepEqual(draws(5), draws(6));
  const share = draws(5).filter((t) => t === 1).length / 200;
  assert.ok(share > 0.65 && share < 0.85, `share of token 1: ${share}`);
  assert.ok(!draws(5).includes(2), 'a -Infinity token is never drawn');
});

test('nextToken: top-k 1 and a near-zero temperature equal greedy; greedy uses the penalised argmax', () => {
  const rng = new Rng(3);
  const x = f32([0.3, 2.0, 1.9, -0.5]);
  for (let i = 0; i < 20; i++) {
    assert.equal(nextToken(x, [], { topK: 1 }, rng), 1);
    assert.equal(nextToken(x, [], { temperature: 1e-4 }, rng), 1);
  }
  assert.equal(nextToken(x, [1], { repetitionPenalty: 1.2 }, null), 2); // 2.0/1.2 < 1.9
});
