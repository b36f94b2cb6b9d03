/**
 * The Phi-3 forward against an independent Float64 reference (test/model-reference.ts) on tiny
 * random configs, with GQA and MHA, right and left padding, the KV cache, the sliding window,
 * half-precision embeddings, greedy generation and the LinearContainer. Backend: cpu.
 * Tolerance 2e-4 on logits of magnitude ~1–10 (float32 against float64).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import type { PhiConfig } from '../src/model/config.ts';
import { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import { halfToF32, toHalfBits } from '../src/kernels/embedding.ts';
import { f32ToBf16Bits as f32ToBf16, f32ToF16Bits as f32ToF16 } from '../src/io/tensor.ts';
import { generateGreedy } from '../src/model/generate.ts';
import { tinyConfig, testWeights, referenceLogits, maxDiff, type Weights } from './model-reference.ts';

const TOL = 2e-4;

const tiny = tinyConfig;

function build(c: PhiConfig, w: Weights, opts = {}): Phi3ForCausalLM {
  return Phi3ForCausalLM.fromWeights(c, (n) => {
    const t = w.get(n);
    if (t === undefined) throw new Error(`missing ${n}`);
    return t;
  }, opts);
}

/** logits [B, T, V] as rows[b][t] Float32Array. */
function rows(logits: tf.Tensor3D): Float32Array[][] {
  const [B, T, V] = logits.shape;
  const d = logits.dataSync() as Float32Array;
  logits.dispose();
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => d.slice((b * T + t) * V, (b * T + t + 1) * V)));
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = TOL): void {
  const d = maxDiff(got, want);
  assert.ok(d <= tol, `${what}: maxdiff ${d.toExponential(2)} > ${tol}`);
}

before(async () => {
  await initBackend({ backend: 'cpu' });
});

const seqs = [
  [3, 17, 5, 9, 22, 1, 30],
  [8, 2, 39, 11],
];

for (const [label, over] of [
  ['GQA (4 heads, 2 kv heads)', { numKeyValueHeads: 2 }],
  ['MHA (4 heads, 4 kv heads)', { numKeyValueHeads: 4 }],
  ['sliding window 3', { slidingWindow: 3 }],
] as Array<[string, Partial<PhiConfig>]>) {
  test(`logits match the Float64 reference: ${label}`, () => {
    const c = tiny(over);
    const w = testWeights(c, 11);
    const m = build(c, w);
    const got = rows(m.forward([seqs[0]!]));
    const want = referenceLogits(c, w, seqs[0]!);
    for (let t = 0; t < want.length; t++) assertClose(got[0]![t]!, want[t]!, `t=${t}`);
    // The logits are not trivially small (the comparison means something).
    assert.ok(Math.max(...want.flatMap((r) => Array.from(r, Math.abs))) > 0.5);
    m.dispose();
  });
}

test('right and left padding give the unpadded logits for real tokens', () => {
  const c = tiny();
  const w = testWeights(c, 12);
  const m = build(c, w);
  const long = seqs[0]!;
  const short = seqs[1]!;
  const pad = long.length - short.length;
  const junk = [33, 7, 19].slice(0, pad);
  const wantShort = referenceLogits(c, w, short);
  const wantLong = referenceLogits(c, w, long);
  // Right padding (training), with junk tokens in the padded slots.
  const right = rows(m.forward([long, [...short, ...junk]], {
    attentionMask: [long.map(() => 1), [...short.map(() => 1), ...junk.map(() => 0)]],
  }));
  for (let t = 0; t < short.length; t++) assertClose(right[1]![t]!, wantShort[t]!, `right pad t=${t}`);
  for (let t = 0; t < long.length; t++) assertClose(right[0]![t]!, wantLong[t]!, `full row t=${t}`);
  // Left padding (generation): positions come from the mask.
  const left = rows(m.forward([long, [...junk, ...short]], {
    attentionMask: [long.map(() => 1), [...junk.map(() => 0), ...short.map(() => 1)]],
  }));
  for (let t = 0; t < short.length; t++) assertClose(left[1]![pad + t]!, wantShort[t]!, `left pad t=${t}`);
  for (const r of [...left, ...right]) for (const v of r) assert.ok(v.every(Number.isFinite), 'padded rows stay finite');
  m.dispose();
});

test('explicit positions drive RoPE as in the reference', () => {
  const c = tiny();
  const w = testWeights(c, 13);
  const m = build(c, w);
  const ids = seqs[1]!;
  // RoPE sees relative positions only, so use uneven gaps (a uniform shift would change nothing).
  const pos = [0, 3, 4, 9];
  const got = rows(m.forward([ids], { positions: [pos] }));
  const want = referenceLogits(c, w, ids, pos);
  for (let t = 0; t < ids.length; t++) assertClose(got[0]![t]!, want[t]!, `t=${t}`);
  const plain = referenceLogits(c, w, ids);
  assert.ok(maxDiff(plain[3]!, want[3]!) > 1e-3, 'positions must matter');
  m.dispose();
});

test('KV cache: prefill then one token at a time equals the full forward (with left padding)', () => {
  const c = tiny({ slidingWindow: 4 });
  const w = testWeights(c, 14);
  const m = build(c, w);
  const a = seqs[0]!;
  const b = [0, 0, ...seqs[1]!, 6]; // left-padded by 2, same length as a
  const maskB = [0, 0, 1, 1, 1, 1, 1];
  const full = rows(m.forward([a, b], { attentionMask: [a.map(() => 1), maskB] }));
  const cache = m.createCache(2);
  const P = 3;
  const pre = rows(m.forward([a.slice(0, P), b.slice(0, P)], { attentionMask: [[1, 1, 1], maskB.slice(0, P)], cache }));
  for (let t = 0; t < P; t++) {
    assertClose(pre[0]![t]!, full[0]![t]!, `prefill a t=${t}`, 1e-5);
    if (maskB[t] === 1) assertClose(pre[1]![t]!, full[1]![t]!, `prefill b t=${t}`, 1e-5);
  }
  for (let t = P; t < a.length; t++) {
    const step = rows(m.forward([[a[t]!], [b[t]!]], { attentionMask: [[1], [maskB[t]!]], cache }));
    assertClose(step[0]![0]!, full[0]![t]!, `step a t=${t}`, 1e-5);
    assertClose(step[1]![0]!, full[1]![t]!, `step b t=${t}`, 1e-5);
  }
  assert.equal(cache.length, a.length);
  const want = referenceLogits(c, w, seqs[1]!.concat([6]));
  assertClose(full[1]![6]!, want[want.length - 1]!, 'left-padded row vs reference');
  const n = tf.memory().numTensors;
  cache.dispose();
  assert.equal(tf.memory().numTensors, n - 2 * c.numHiddenLayers);
  m.dispose();
});

test('sliding window: a token influences exactly the queries less than `window` after it (1 layer)', () => {
  const W = 3;
  const c = tiny({ numHiddenLayers: 1, slidingWindow: W });
  const m = build(c, testWeights(c, 15));
  const base = [4, 9, 13, 21, 2, 35, 8, 16];
  const j = 2;
  const changed = base.map((v, i) => (i === j ? 27 : v));
  const x = rows(m.forward([base, changed]));
  for (let i = 0; i < base.length; i++) {
    const d = maxDiff(x[0]![i]!, x[1]![i]!);
    const sees = i >= j && i - j < W;
    assert.equal(d > 1e-6, sees, `query ${i}, key ${j}: diff ${d}`);
  }
  m.dispose();
});

test('lastOnly gives the last position of the full logits', () => {
  const c = tiny();
  const m = build(c, testWeights(c, 16));
  const full = rows(m.forward([seqs[0]!]));
  const last = rows(m.forward([seqs[0]!], { lastOnly: true }));
  assert.equal(last[0]!.length, 1);
  assertClose(last[0]![0]!, full[0]![seqs[0]!.length - 1]!, 'last', 1e-6);
  m.dispose();
});

test('half-precision embedding storage equals a float32 table of the rounded values', () => {
  // Known encodings: 1 → 0x3c00, −2 → 0xc000, 65504 (fp16 max) → 0x7bff, 1 + 2⁻¹¹ ties to even → 0x3c00.
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-2), 0xc000);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00);
  assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(-2), 0xc000);
  const c = tiny();
  const w = testWeights(c, 17);
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const emb = w.get('model.embed_tokens.weight')!;
    const rounded = new Float32Array(emb.length);
    halfToF32(toHalfBits(emb, dtype), 0, emb.length, rounded);
    assert.ok(maxDiff(rounded, emb) > 0 && maxDiff(rounded, emb) < 0.01 * 4, `${dtype} rounding is small but real`);
    const ref = build(c, new Map([...w, ['model.embed_tokens.weight', rounded]]));
    const half = build(c, w, { embedding: { storage: dtype } });
    assert.equal(half.embedTokens.bytes(), c.vocabSize * c.hiddenSize * 2);
    assertClose(rows(half.forward([seqs[0]!]))[0]!.flatMap((r) => Array.from(r)), rows(ref.forward([seqs[0]!]))[0]!.flatMap((r) => Array.from(r)), dtype, 1e-6);
    ref.dispose();
    half.dispose();
  }
});

test('generateGreedy equals argmax decoding with full forwards, per row, with stop ids', () => {
  const c = tiny();
  const m = build(c, testWeights(c, 18));
  const prompts = [[5, 9, 14, 3], [22, 7]];
  const naive = (p: number[], n: number, stop: Set<number>): number[] => {
    const out: number[] = [];
    const seq = [...p];
    for (let i = 0; i < n; i++) {
      const r = rows(m.forward([seq]))[0]!;
      const last = r[r.length - 1]!;
      const tok = last.indexOf(Math.max(...last));
      if (stop.has(tok)) break;
      out.push(tok);
      seq.push(tok);
    }
    return out;
  };
  const free = prompts.map((p) => naive(p, 6, new Set()));
  const got = generateGreedy(m, prompts, 6);
  assert.deepEqual(got.map((g) => g.tokens), free);
  assert.deepEqual(got.map((g) => g.finish), ['length', 'length']);
  // Stop on the third token generated for row 0.
  const stopTok = free[0]![2]!;
  const stopped = generateGreedy(m, prompts, 6, [stopTok]);
  assert.deepEqual(stopped[0]!.tokens, naive(prompts[0]!, 6, new Set([stopTok])));
  assert.equal(stopped[0]!.finish, 'stop');
  assert.deepEqual(stopped[1]!.tokens, naive(prompts[1]!, 6, new Set([stopTok])));
  m.dispose();
});

test('LinearContainer: HF names, swapping a layer changes the output, shape and name errors', () => {
  const c = tiny();
  const w = testWeights(c, 19);
  const m = build(c, w);
  const names = m.linearNames();
  assert.equal(names.length, 4 * c.numHiddenLayers + 1);
  assert.ok(names.includes('model.layers.1.self_attn.qkv_proj'));
  assert.ok(names.includes('model.layers.0.mlp.gate_up_proj'));
  assert.ok(names.includes('lm_head'));
  const qkv = m.getLinear('model.layers.0.self_attn.qkv_proj');
  assert.equal(qkv.outFeatures, (4 + 2 * 2) * 4);
  assert.throws(() => m.getLinear('model.layers.9.self_attn.q_proj'), /model\.layers\.9\.self_attn\.q_proj.*lm_head/s);
  assert.throws(() => m.setLinear('lm_head', new FloatLinear(new Float32Array(c.vocabSize * 8), c.vocabSize, 8)), /lm_head.*40×16/);
  const old = m.getLinear('lm_head');
  m.setLinear('lm_head', new FloatLinear(new Float32Array(c.vocabSize * c.hiddenSize), c.vocabSize, c.hiddenSize));
  const z = rows(m.forward([seqs[1]!]))[0]!;
  assert.ok(z.every((r) => r.every((v) => v === 0)));
  m.getLinear('lm_head').dispose();
  m.setLinear('lm_head', old);
  m.dispose();
});

test('namedWeights gives every HF tensor with its shape; a model rebuilt from them is identical', () => {
  const c = tiny();
  const w = testWeights(c, 20);
  const m = build(c, w);
  const saved = new Map<string, Float32Array>();
  for (const [name, data, shape] of m.namedWeights()) {
    assert.equal(data.length, shape.reduce((a, b) => a * b, 1), name);
    saved.set(name, data);
  }
  assert.deepEqual([...saved.keys()].sort(), [...w.keys()].sort());
  for (const [name, data] of w) assert.equal(maxDiff(saved.get(name)!, data), 0, name);
  assert.deepEqual(
    m.namedWeights().next().value?.[2],
    [c.vocabSize, c.hiddenSize],
  );
  m.dispose();
});

test('a weight source tensor of the wrong size is an error naming the tensor', () => {
  const c = tiny();
  const w = testWeights(c, 21);
  w.set('model.layers.1.mlp.down_proj.weight', new Float32Array(10));
  assert.throws(() => build(c, w), (e: Error) => /model\.layers\.1\.mlp\.down_proj\.weight/.test(e.message) && /16, 24/.test(e.message));
});

test('input errors name the argument', () => {
  const c = tiny();
  const m = build(c, testWeights(c, 22));
  assert.throws(() => m.forward([[1, 2], [3]]), /inputIds.*row 1/);
  assert.throws(() => m.forward([[1, 2]], { attentionMask: [[1, 1, 1]] }), /attentionMask/);
  assert.throws(() => m.forward([[1, 99]]), /99/);
  m.dispose();
});

test('tied word embeddings: the head is the embedding table; no lm_head tensor is read or written', () => {
  const c = tiny({ tieWordEmbeddings: true });
  const w = testWeights(c, 23);
  w.delete('lm_head.weight');
  const m = build(c, w);
  const got = rows(m.forward([seqs[1]!]));
  const want = referenceLogits(c, new Map([...w, ['lm_head.weight', w.get('model.embed_tokens.weight')!]]), seqs[1]!);
  for (let t = 0; t < want.length; t++) assertClose(got[0]![t]!, want[t]!, `t=${t}`);
  assert.ok(![...m.namedWeights()].some(([name]) => name === 'lm_head.weight'));
  m.dispose();
});
