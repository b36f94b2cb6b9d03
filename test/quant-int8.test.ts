/**
 * Row-wise int8 codec (no tensors): round-trip bound, round-half-to-even, zero rows, storage, and the
 * bitsandbytes `Linear8bitLt` serialization through a real safetensors file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INV_127, dequantizeInt8, dequantizeInt8Columns, int8Bytes, int8CodesChunk, quantizeInt8, roundHalfEven } from '../src/kernels/int8.ts';
import { int8FromBnbRecord, int8ToBnbRecord } from '../src/kernels/quant-bnb-format.ts';
import { openSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';

test('roundHalfEven matches torch.round on ties', () => {
  const cases: Array<[number, number]> = [
    [0.5, 0], [1.5, 2], [2.5, 2], [-0.5, 0], [-1.5, -2], [-2.5, -2], [126.5, 126], [-126.5, -126], [0.49, 0], [3.7, 4], [-3.7, -4],
  ];
  for (const [x, want] of cases) assert.equal(roundHalfEven(x) + 0, want, `round(${x})`);
});

for (const [rows, cols] of [
  [1, 5],
  [8, 33],
  [16, 64],
] as const) {
  test(`int8 round trip [${rows}×${cols}]: |w − q·s/127| ≤ rowAbsmax/254`, () => {
    const w = new Rng(rows * cols).fillNormal(new Float32Array(rows * cols), 0.05);
    const q = quantizeInt8(w, [rows, cols]);
    const d = dequantizeInt8(q);
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(w[r * cols + c]!));
      assert.equal(q.rowAbsmax[r], m);
      for (let c = 0; c < cols; c++) {
        const e = r * cols + c;
        assert.ok(Math.abs(q.data[e]!) <= 127, 'code in range');
        assert.ok(Math.abs(w[e]! - d[e]!) <= (m / 254) * (1 + 1e-5), `row ${r} col ${c}: ${w[e]} vs ${d[e]}`);
      }
    }
  });
}

test('int8: the row maximum maps to ±127, ties round to even, a zero row stays zero', () => {
  // Row 0: absmax 127 → scale 1, so codes are round-half-even of the values themselves.
  // Row 1: all zero.
  const w = Float32Array.from([127, 2.5, -3.5, 0.5, 0, 0, 0, 0]);
  const q = quantizeInt8(w, [2, 4]);
  assert.deepEqual(Array.from(q.data), [127, 2, -4, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(q.rowAbsmax), [127, 0]);
  const d = dequantizeInt8(q);
  assert.equal(d[0], Math.fround(Math.fround(127 * 127) * INV_127));
  assert.deepEqual(Array.from(d.slice(4)), [0, 0, 0, 0]);
});

test('int8 helpers: code chunks and dequantized columns agree with the full dequantization', () => {
  const w = new Rng(2).fillNormal(new Float32Array(6 * 10), 1);
  const q = quantizeInt8(w, [6, 10]);
  const chunk = int8CodesChunk(q, 3, 7);
  const full = dequantizeInt8(q);
  const cols = dequantizeInt8Columns(q, [9, 0, 4]);
  for (let r = 0; r < 6; r++) {
    for (let j = 0; j < 4; j++) assert.equal(chunk[r * 4 + j], q.data[r * 10 + 3 + j]);
    [9, 0, 4].forEach((c, j) => assert.equal(cols[r * 3 + j], full[r * 10 + c]));
  }
  assert.equal(int8Bytes(q), 60 + 6 * 4);
});

test('bitsandbytes Linear8bitLt serialization round trip through a safetensors file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clinilora-int8-'));
  try {
    const w = new Rng(4).fillNormal(new Float32Array(12 * 20), 0.1);
    const q = quantizeInt8(w, [12, 20]);
    const rec = int8ToBnbRecord(q);
    assert.deepEqual(rec['weight']!.shape, [12, 20]);
    assert.equal(rec['weight']!.dtype, 'I8');
    assert.deepEqual(rec['SCB']!.shape, [12]);
    assert.deepEqual(rec['weight_format']!.shape, []);
    const prefix = 'model.layers.0.mlp.down_proj.';
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, Object.entries(rec).map(([k, v]) => [prefix + k, v] as const));
    const f = openSafetensors(file);
    const back: typeof rec = {};
    for (const name of f.names()) back[name.slice(prefix.length)] = f.read(name);
    f.close();
    const q2 = int8FromBnbRecord(back, { file });
    assert.deepEqual(q2.shape, [12, 20]);
    assert.deepEqual(q2.data, q.data);
    assert.deepEqual(q2.rowAbsmax, q.rowAbsmax);
    const bad = { ...back, SCB: { dtype: 'F32' as const, shape: [3], data: new Uint8Array(12) } };
    assert.throws(() => int8FromBnbRecord(bad, { file }), (e: unknown) => e instanceof CliniloraError && /SCB/.test(e.message) && /F32 \[12\]/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
