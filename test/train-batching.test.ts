/**
 * Batching with the real Phi-3 tokenizer: the label mask covers exactly the answer and its closing
 * `<|end|>`; truncation keeps the answer; batches are right-padded, grouped by length, and
 * deterministic for a seed.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { phi3Tokenizer } from '../src/data/tokens.ts';
import type { Phi3Tokenizer } from '../src/tokenizer/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';
import { collate, encodeSample, makeBatches, planBatches, type EncodedSample } from '../src/train/batching.ts';

let tok: Phi3Tokenizer;
before(async () => {
  tok = await phi3Tokenizer();
});

const PAD = 32000;
const sample = { system: 'You audit model reports.', user: 'Sensitivity 0.91, specificity 0.88, n = 412.', answer: 'Category: sound\nExplanation: the numbers agree.' };

const picked = (e: EncodedSample, want: number): number[] => [...e.ids].filter((_, i) => e.labels[i] === want);

test('labels are the answer and its <|end|>, nothing of the system, user or template', () => {
  const e = encodeSample(sample, tok, { maxLength: 512 });
  assert.equal(e.truncated, 'none');
  assert.equal(tok.decode(picked(e, 1)), `${sample.answer}<|end|>`);
  const prompt = tok.decode(picked(e, 0));
  assert.ok(prompt.includes(sample.system) && prompt.includes(sample.user), prompt);
  assert.ok(prompt.endsWith('<|assistant|>'), prompt);
  assert.ok(!prompt.includes('Category'), 'no answer text is masked out');
  // targets are one contiguous run ending the sequence with <|end|>
  const first = e.labels.indexOf(1);
  assert.equal(first, e.promptLength);
  assert.ok(e.labels.subarray(first).every((v) => v === 1));
  assert.equal(e.ids[e.ids.length - 1], tok.tokenToId('<|end|>'));
  assert.equal(e.answerLength, e.ids.length - e.promptLength);
});

test("truncation 'prompt' shortens the user turn and keeps every answer token", () => {
  const long = { ...sample, user: 'word '.repeat(300) + 'final clause' };
  const full = encodeSample(long, tok, { maxLength: 10_000 });
  const e = encodeSample(long, tok, { maxLength: 100 });
  assert.equal(e.ids.length, 100);
  assert.equal(e.truncated, 'prompt');
  assert.deepEqual(picked(e, 1), picked(full, 1));
  const text = tok.decode([...e.ids]);
  assert.ok(text.startsWith(`<|system|>${sample.system}<|end|><|user|>word`) || text.includes(`${sample.system}<|end|><|user|>`), text);
  assert.ok(!text.includes('final clause'), 'the end of the user content was cut');
  assert.ok(text.includes('<|end|><|assistant|>'), 'the user turn still closes before the answer');
});

test("truncation 'right' cuts the sequence's end; an answer that cannot fit is an error", () => {
  const full = encodeSample(sample, tok, { maxLength: 512 });
  const max = full.promptLength + 3;
  const e = encodeSample(sample, tok, { maxLength: max, truncation: 'right' });
  assert.equal(e.ids.length, max);
  assert.equal(e.truncated, 'answer');
  assert.equal(e.answerLength, 3);
  assert.deepEqual([...e.ids], [...full.ids.subarray(0, max)]);
  assert.throws(() => encodeSample(sample, tok, { maxLength: full.promptLength, truncation: 'right' }), (err: unknown) => err instanceof CliniloraError && /maxLength/.test(err.message));
});

function synthetic(n: number, seed: number): EncodedSample[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 3 + r.int(40);
    const ids = Int32Array.from({ length: len }, () => r.int(1000));
    const labels = new Uint8Array(len).fill(1, Math.max(1, len - 3));
    return { ids, labels, promptLength: Math.max(1, len - 3), answerLength: len - Math.max(1, len - 3), truncated: 'none' as const };
  });
}

test('collate right-pads with the pad id, masks padding, keeps labels off padding', () => {
  const enc = synthetic(5, 1);
  const b = collate(enc, [0, 1, 2, 3, 4], PAD);
  assert.equal(b.T, Math.max(...enc.map((e) => e.ids.length)));
  enc.forEach((e, r) => {
    const row = b.ids.subarray(r * b.T, (r + 1) * b.T);
    assert.deepEqual([...row.subarray(0, e.ids.length)], [...e.ids]);
    assert.ok(row.subarray(e.ids.length).every((v) => v === PAD));
    const m = b.attentionMask.subarray(r * b.T, (r + 1) * b.T);
    assert.ok(m.subarray(0, e.ids.length).every((v) => v === 1) && m.subarray(e.ids.length).every((v) => v === 0));
    const l = b.labels.subarray(r * b.T, (r + 1) * b.T);
    assert.deepEqual([...l.subarray(0, e.ids.length)], [...e.labels]);
    assert.ok(l.subarray(e.ids.length).every((v) => v === 0));
  });
  assert.equal(b.tokens, enc.reduce((a, e) => a + e.ids.length, 0));
});

test('batches by length: every sample once per epoch, less padding than random, deterministic per seed', () => {
  const enc = synthetic(64, 2);
  const lengths = enc.map((e) => e.ids.length);
  const padding = (plan: number[][]): number => plan.reduce((a, ix) => a + ix.length * Math.max(...ix.map((i) => lengths[i]!)) - ix.reduce((s, i) => s + lengths[i]!, 0), 0);
  const a = planBatches(lengths, { batchSize: 8, rng: new Rng(7) });
  const b = planBatches(lengths, { batchSize: 8, rng: new Rng(7) });
  const c = planBatches(lengths, { batchSize: 8, rng: new Rng(8) });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual(a.flat().sort((x, y) => x - y), lengths.map((_, i) => i));
  const random = planBatches(lengths, { batchSize: 8, rng: new Rng(7), byLength: false });
  assert.ok(padding(a) < padding(random) / 2, `by length ${padding(a)} vs random ${padding(random)}`);
  // A stream draws a new order each epoch.
  const rng = new Rng(9);
  const e1 = planBatches(lengths, { batchSize: 8, rng });
  const e2 = planBatches(lengths, { batchSize: 8, rng });
  assert.notDeepEqual(e1, e2);
  // makeBatches = plan + collate; the last batch may be short.
  const batches = makeBatches(synthetic(10, 3), { batchSize: 4, rng: new Rng(1), padId: PAD });
  assert.deepEqual(batches.map((x) => x.B).sort(), [2, 4, 4]);
});

test('firstLineWeight weights exactly the answer tokens of the first line, and collate carries them', () => {
  const plain = encodeSample(sample, tok, { maxLength: 512 });
  assert.equal(plain.weights, undefined, 'weight 1 adds nothing');
  const e = encodeSample(sample, tok, { maxLength: 512, firstLineWeight: 8 });
  assert.ok(e.weights !== undefined);
  const heavy = [...e.ids].filter((_, i) => e.labels[i] === 1 && e.weights![i] === 8);
  assert.equal(tok.decode(heavy), 'Category: sound\n');
  const light = [...e.ids].filter((_, i) => e.labels[i] === 1 && e.weights![i] === 1);
  assert.equal(tok.decode(light), 'Explanation: the numbers agree.<|end|>');
  // one weighted and one plain sample: the batch has weights, the plain row all 1
  const b = collate([e, plain], [0, 1], PAD);
  assert.ok(b.labelWeights !== undefined);
  assert.deepEqual([...b.labelWeights.subarray(0, e.ids.length)], [...e.weights]);
  assert.ok(b.labelWeights.subarray(b.T).every((w) => w === 1));
  assert.equal(collate([plain], [0], PAD).labelWeights, undefined);
  assert.throws(() => encodeSample(sample, tok, { maxLength: 512, firstLineWeight: 0 }), (err: unknown) => err instanceof CliniloraError && /firstLineWeight/.test(err.message));
});
