/**
 * NF4 codec (no tensors): codes and thresholds against bitsandbytes' published constants, nibble order
 * on hand-made blocks, round-trip error bounds the block scheme implies, double quantization (overhead
 * and error), the dynamic map, and the bitsandbytes serialization through a real safetensors file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NF4_CODES, NF4_THRESHOLDS, dequantizeNF4, isNested, nf4BlockAbsmax, nf4Bytes, nf4Index, quantizeNF4 } from '../src/kernels/nf4.ts';
import { createDynamicMap, dequantizeBlockwise8, quantizeBlockwise8, quantizeToCode8 } from '../src/kernels/quant-blockwise8.ts';
import { NF4_QUANT_STATE_KEY, nf4FromBnbRecord, nf4ToBnbRecord } from '../src/kernels/quant-bnb-format.ts';
import { openSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';

/** The codes as FACTS.md / bitsandbytes `get_4bit_type('nf4')` list them. */
const SPEC_CODES = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** Thresholds written in bitsandbytes' `dQuantizeNF4` decision tree (csrc/kernels.cu), by code index k (between k and k+1). */
const BNB_TREE_THRESHOLDS: Record<number, number> = {
  0: -0.8480964004993439,
  3: -0.33967943489551544,
  4: -0.23460740596055984,
  5: -0.13791173323988914,
  6: -0.045525018125772476,
  7: 0.03979014977812767,
  8: 0.1202552504837513,
  9: 0.2035212516784668,
  10: 0.2920137718319893,
  11: 0.3893125355243683,
  12: 0.5016634166240692,
  13: 0.6427869200706482,
  14: 0.8614784181118011,
};

function normals(n: number, seed: number, std = 0.02): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), std);
}

test('NF4 codes are the published 16 values, sorted, with 0 at index 7', () => {
  assert.deepEqual(Array.from(NF4_CODES), SPEC_CODES.map(Math.fround));
  for (let k = 1; k < 16; k++) assert.ok(NF4_CODES[k]! > NF4_CODES[k - 1]!, `code ${k} > code ${k - 1}`);
  assert.equal(NF4_CODES[7], 0);
});

test("thresholds equal bitsandbytes' dQuantizeNF4 tree (float32)", () => {
  for (const [k, t] of Object.entries(BNB_TREE_THRESHOLDS)) assert.equal(NF4_THRESHOLDS[Number(k)], Math.fround(t), `threshold ${k}`);
});

test('nf4Index: codes map to themselves, thresholds go to the lower code, NaN to 0', () => {
  for (let k = 0; k < 16; k++) assert.equal(nf4Index(NF4_CODES[k]!), k);
  for (let k = 0; k < 15; k++) {
    const t = NF4_THRESHOLDS[k]!;
    assert.equal(nf4Index(t), k, `at threshold ${k}`);
    assert.equal(nf4Index(t + 1e-6), k + 1, `just above threshold ${k}`);
  }
  assert.equal(nf4Index(NaN), 0);
  assert.equal(nf4Index(-2), 0);
  assert.equal(nf4Index(2), 15);
});

test('a block of the 16 codes × absmax round-trips exactly, first element in the high nibble', () => {
  const a = 0.5; // a power of two: x · (1/a) is exact in float32
  const w = new Float32Array(64);
  for (let i = 0; i < 64; i++) w[i] = SPEC_CODES[i % 16]! * a;
  const q = quantizeNF4(w, [2, 32]);
  assert.deepEqual(Array.from(q.absmax as Float32Array), [a]);
  const expectBytes = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
  assert.deepEqual(Array.from(q.data), [...expectBytes, ...expectBytes, ...expectBytes, ...expectBytes]);
  assert.deepEqual(Array.from(dequantizeNF4(q)), Array.from(w));
});

test('odd length: the last byte carries the padded zero code (7) in its low nibble', () => {
  const q = quantizeNF4(Float32Array.from([1, -1, 0]), [1, 3]);
  assert.deepEqual(Array.from(q.data), [0xf0, 0x77]);
  assert.deepEqual(Array.from(dequantizeNF4(q)), [1, -1, 0]);
});

test('all-zero block dequantizes to zeros', () => {
  const q = quantizeNF4(new Float32Array(70), [7, 10]);
  assert.ok(Array.from(dequantizeNF4(q)).every((v) => v === 0), 'zeros');
});

/** Half the gap between the two codes around x ∈ [-1, 1]: the largest error nearest-code rounding can make there. */
function halfGap(x: number): number {
  let k = 0;
  while (k < 14 && x > NF4_CODES[k + 1]!) k++;
  return (NF4_CODES[k + 1]! - NF4_CODES[k]!) / 2;
}

const MAX_HALF_GAP = Math.max(...Array.from({ length: 15 }, (_, k) => (NF4_CODES[k + 1]! - NF4_CODES[k]!) / 2));

for (const shape of [
  [4, 64],
  [3, 50],
  [17, 33],
  [64, 64],
] as const) {
  test(`NF4 round trip [${shape.join('×')}]: error ≤ half the local code gap × block absmax`, () => {
    const n = shape[0] * shape[1];
    const w = normals(n, 11 + n);
    const q = quantizeNF4(w, shape);
    const d = dequantizeNF4(q);
    const absmax = q.absmax as Float32Array;
    assert.equal(absmax.length, Math.ceil(n / 64));
    let worst = 0;
    for (let e = 0; e < n; e++) {
      const a = absmax[Math.floor(e / 64)]!;
      const err = Math.abs(w[e]! - d[e]!);
      const bound = halfGap(w[e]! / a) * a * (1 + 1e-5) + 1e-12;
      assert.ok(err <= bound, `element ${e}: |${w[e]} − ${d[e]}| = ${err} > ${bound}`);
      assert.ok(err <= MAX_HALF_GAP * a * (1 + 1e-5), `element ${e} exceeds the global bound`);
      worst = Math.max(worst, err / a);
    }
    assert.ok(worst > 0.01, `the bound is not vacuous (worst relative error ${worst})`);
  });
}

test('NF4 storage: 0.5 byte a weight + 4 bytes a block; double quant ≈ 0.127 bits a weight of overhead', () => {
  const n = 64 * 256 * 4; // 1024 blocks, 4 nested blocks
  const w = normals(n, 5);
  const plain = quantizeNF4(w, [256, 256]);
  const dq = quantizeNF4(w, [256, 256], { doubleQuant: true });
  assert.equal(plain.data.byteLength, n / 2);
  assert.equal(nf4Bytes(plain), n / 2 + 4 * (n / 64));
  const overheadPlain = ((nf4Bytes(plain) - n / 2) * 8) / n;
  const overheadDq = ((nf4Bytes(dq) - n / 2) * 8) / n;
  assert.equal(overheadPlain, 0.5);
  assert.ok(Math.abs(overheadDq - 0.127) < 0.001, `double-quant overhead ${overheadDq} bits/param`);
  assert.ok(isNested(dq.absmax), 'nested absmax');
  assert.deepEqual(dq.data, plain.data, 'the 4-bit codes do not depend on how absmax is stored');
});

test('double quant: absmax error within half a dynamic-map gap, weights within the combined bound', () => {
  const n = 64 * 300; // 300 blocks: one full and one partial nested block
  const w = normals(n, 9);
  const plain = quantizeNF4(w, [150, 128]);
  const dq = quantizeNF4(w, [150, 128], { doubleQuant: true });
  const a = plain.absmax as Float32Array;
  const a2 = nf4BlockAbsmax(dq);
  const nested = dq.absmax;
  assert.ok(isNested(nested), 'nested absmax');
  assert.equal(nested.absmax2.length, 2);
  let mean = 0;
  for (const v of a) mean += v / a.length;
  assert.ok(Math.abs(nested.offset - mean) <= 1e-7 * mean, `offset ${nested.offset} vs mean ${mean}`);
  const map = createDynamicMap();
  let maxGap = 0;
  for (let i = 1; i < 256; i++) maxGap = Math.max(maxGap, map[i]! - map[i - 1]!);
  for (let b = 0; b < a.length; b++) {
    const s = nested.absmax2[Math.floor(b / 256)]!;
    assert.ok(Math.abs(a2[b]! - a[b]!) <= (maxGap / 2) * s * (1 + 1e-5) + 1e-9, `block ${b}`);
  }
  const d = dequantizeNF4(dq);
  for (let e = 0; e < n; e++) {
    const b = Math.floor(e / 64);
    const code = d[e]! / a2[b]!;
    const bound = halfGap(w[e]! / a[b]!) * a[b]! + Math.abs(code) * Math.abs(a2[b]! - a[b]!) + 1e-7;
    assert.ok(Math.abs(w[e]! - d[e]!) <= bound, `element ${e}`);
  }
});

test('dynamic map: 256 sorted values, symmetric but for +1, hand-derived ends', () => {
  const m = createDynamicMap();
  assert.equal(m.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(m[i]! > m[i - 1]!, `strictly increasing at ${i}`);
  assert.equal(m[127], 0);
  assert.equal(m[255], 1);
  for (let i = 0; i < 255; i++) assert.equal(m[i]! + m[254 - i]!, 0, `m[${i}] = −m[${254 - i}]`);
  // Smallest magnitude: 1e-6 · mean(linspace(0.1, 1, 2)) = 5.5e-7; largest below 1: mean(1 − 0.9/64, 1) = 0.99296875.
  assert.ok(Math.abs(m[128]! - 5.5e-7) < 1e-12, `m[128] = ${m[128]}`);
  assert.ok(Math.abs(m[254]! - 0.99296875) < 1e-7, `m[254] = ${m[254]}`);
});

test('quantizeToCode8 picks the nearest code (bitsandbytes binary search + midpoint)', () => {
  const m = createDynamicMap();
  const rng = new Rng(3);
  for (let t = 0; t < 3000; t++) {
    const x = Math.fround(t < 1500 ? rng.uniformRange(-1, 1) : rng.uniformRange(-1e-3, 1e-3));
    const k = quantizeToCode8(m, x);
    let best = 0;
    for (let i = 1; i < 256; i++) if (Math.abs(x - m[i]!) < Math.abs(x - m[best]!)) best = i;
    assert.ok(Math.abs(x - m[k]!) <= Math.abs(x - m[best]!) + 1e-12, `x = ${x}: got ${m[k]}, nearest ${m[best]}`);
  }
  assert.equal(quantizeToCode8(m, 1), 255);
  assert.equal(quantizeToCode8(m, -1), 0);
  const { q, absmax } = quantizeBlockwise8(Float32Array.from([0.5, -0.25, 0.125]), m, 256);
  assert.deepEqual(Array.from(absmax), [0.5]);
  const back = dequantizeBlockwise8(q, absmax, m, 256);
  let maxGap = 0;
  for (let i = 1; i < 256; i++) maxGap = Math.max(maxGap, m[i]! - m[i - 1]!);
  assert.equal(back[0], 0.5, 'the block maximum maps to code 1.0 exactly');
  for (const [i, v] of [0.5, -0.25, 0.125].entries()) assert.ok(Math.abs(back[i]! - v) <= (maxGap / 2) * 0.5, `value ${v} → ${back[i]}`);
});

for (const doubleQuant of [false, true]) {
  test(`bitsandbytes serialization round trip through a safetensors file (doubleQuant=${doubleQuant})`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clinilora-nf4-'));
    try {
      const w = normals(96 * 40, 21);
      const q = quantizeNF4(w, [96, 40], { doubleQuant });
      const rec = nf4ToBnbRecord(q, { dtype: 'float16' });
      assert.deepEqual(rec['weight']!.shape, [96 * 20, 1]);
      assert.equal(rec['weight.absmax']!.dtype, doubleQuant ? 'U8' : 'F32');
      const state = JSON.parse(new TextDecoder().decode(rec[NF4_QUANT_STATE_KEY]!.data)) as Record<string, unknown>;
      assert.equal(state['quant_type'], 'nf4');
      assert.equal(state['blocksize'], 64);
      assert.equal(state['dtype'], 'float16');
      assert.deepEqual(state['shape'], [96, 40]);
      assert.equal('nested_offset' in state, doubleQuant);
      const prefix = 'model.layers.0.self_attn.qkv_proj.';
      const file = path.join(dir, 'model.safetensors');
      writeSafetensors(file, Object.entries(rec).map(([k, v]) => [prefix + k, v] as const));
      const f = openSafetensors(file);
      const back: typeof rec = {};
      for (const name of f.names()) back[name.slice(prefix.length)] = f.read(name);
      f.close();
      const q2 = nf4FromBnbRecord(back, { file });
      assert.deepEqual(q2.shape, q.shape);
      assert.deepEqual(q2.data, q.data);
      assert.deepEqual(Array.from(dequantizeNF4(q2)), Array.from(dequantizeNF4(q)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('bitsandbytes record errors name the tensor, expected and found', () => {
  const q = quantizeNF4(normals(128, 1), [2, 64]);
  const rec = nf4ToBnbRecord(q);
  const fp4 = { ...rec, [NF4_QUANT_STATE_KEY]: { dtype: 'U8' as const, shape: [10], data: new TextEncoder().encode('{"quant_type": "fp4", "blocksize": 64, "dtype": "float32", "shape": [2, 64]}') } };
  assert.throws(() => nf4FromBnbRecord(fp4, { file: 'x.safetensors' }), (e: unknown) => e instanceof CliniloraError && e.code === 'E_FORMAT' && /quant_type/.test(e.message) && /x\.safetensors/.test(e.message));
  const { ['weight.absmax']: _drop, ...missing } = rec;
  assert.throws(() => nf4FromBnbRecord(missing), (e: unknown) => e instanceof CliniloraError && e.code === 'E_MISSING' && /weight\.absmax/.test(e.message));
  const short = { ...rec, weight: { dtype: 'U8' as const, shape: [3, 1], data: new Uint8Array(3) } };
  assert.throws(() => nf4FromBnbRecord(short), (e: unknown) => e instanceof CliniloraError && /64 packed bytes/.test(e.message));
});
