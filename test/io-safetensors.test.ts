import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { openSafetensors, writeSafetensors, type LazyTensor } from '../src/io/safetensors.ts';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, fromFloat32, rawFromTyped, toFloat32, type RawTensor } from '../src/io/tensor.ts';

const dir = mkdtempSync(join(tmpdir(), 'clinilora-st-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** float32 from its bit pattern */
function bitsF32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

test('f32 → f16: known bit patterns, rounding to nearest even, subnormals, overflow', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest half
    [65519, 0x7bff], // rounds down
    [65520, 0x7c00], // halfway to 65536: ties to even → overflow to inf
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half of it: tie → even (0)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal steps → even (2)
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10 → even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 1+2^-10 and 1+2^-9 → even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [2 ** -14 - 2 ** -25, 0x0400], // rounds up from subnormal into the smallest normal
  ];
  for (const [x, bits] of cases) assert.equal(f32ToF16Bits(x), bits, `f16(${x})`);
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
});

test('f16 decode → encode is the identity on all 65536 patterns (NaNs stay NaN)', () => {
  for (let h = 0; h < 65536; h++) {
    const x = f16BitsToF32(h);
    if (Number.isNaN(x)) {
      assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
      assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(x))));
      continue;
    }
    assert.equal(f32ToF16Bits(x), h, `pattern ${h.toString(16)}`);
  }
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0xfc00), -Infinity);
});

test('f32 → bf16 rounds to nearest even; NaN stays NaN', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(-1), 0xbf80);
  assert.equal(f32ToBf16Bits(bitsF32(0x3f808000)), 0x3f80); // tie → even
  assert.equal(f32ToBf16Bits(bitsF32(0x3f818000)), 0x3f82); // tie → even (up)
  assert.equal(f32ToBf16Bits(bitsF32(0x3f808001)), 0x3f81);
  assert.equal(f32ToBf16Bits(bitsF32(0x7f7fffff)), 0x7f80); // max float rounds to inf
  assert.equal(f32ToBf16Bits(Infinity), 0x7f80);
  const nan = f32ToBf16Bits(NaN);
  assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0);
});

test('toFloat32 / fromFloat32 for every dtype', () => {
  const v = [1.5, -2.25, 0, 3e-6, 1000.125];
  assert.deepEqual(Array.from(toFloat32(fromFloat32(v, [5], 'F32'))), v.map(Math.fround));
  const f16 = toFloat32(fromFloat32(v, [5], 'F16'));
  assert.deepEqual(Array.from(f16).slice(0, 3), [1.5, -2.25, 0]);
  assert.ok(Math.abs(f16[3]! - 3e-6) < 2 ** -24);
  assert.equal(f16[4], 1000); // half spacing at 1000 is 0.5: 1000.125 rounds down
  const bf = toFloat32(fromFloat32(v, [5], 'BF16'));
  assert.deepEqual(Array.from(bf).slice(0, 3), [1.5, -2.25, 0]);
  assert.equal(bf[4], 1000);
  assert.deepEqual(Array.from(toFloat32(rawFromTyped(new Int8Array([-128, -1, 0, 127]), [2, 2]))), [-128, -1, 0, 127]);
  assert.deepEqual(Array.from(toFloat32(rawFromTyped(new Uint8Array([0, 255]), [2]))), [0, 255]);
  assert.deepEqual(Array.from(toFloat32(rawFromTyped(new Int32Array([-70000, 5]), [2]))), [-70000, 5]);
  assert.deepEqual(Array.from(toFloat32(rawFromTyped(new BigInt64Array([-3n, 1n << 40n]), [2]))), [-3, 2 ** 40]);
  // unaligned F32 bytes decode too
  const bytes = new Uint8Array(9);
  bytes.set(new Uint8Array(new Float32Array([7.5, -1]).buffer), 1);
  assert.deepEqual(Array.from(toFloat32({ dtype: 'F32', shape: [2], data: bytes.subarray(1) })), [7.5, -1]);
  assert.throws(() => toFloat32({ dtype: 'F32', shape: [3], data: new Uint8Array(8) }), (e: CliniloraError) => e.code === 'E_SHAPE');
});

function sample(): Map<string, RawTensor> {
  return new Map<string, RawTensor>([
    ['w.f32', fromFloat32([1, 2, 3, 4, 5, 6], [2, 3], 'F32')],
    ['w.f16', fromFloat32([0.5, -0.25, 8], [3], 'F16')],
    ['w.bf16', fromFloat32([1, -1, 2, 1e10], [2, 2], 'BF16')],
    ['q.i8', rawFromTyped(new Int8Array([-5, 7, 0]), [3])],
    ['q.u8', rawFromTyped(new Uint8Array([200, 1]), [1, 2])],
    ['idx.i32', rawFromTyped(new Int32Array([123456, -1]), [2])],
    ['idx.i64', rawFromTyped(new BigInt64Array([1n, -2n, 3n]), [3])],
    ['scalar', fromFloat32([42], [], 'F32')],
    ['empty', fromFloat32([], [0, 4], 'F32')],
  ]);
}

test('round trip of every dtype with metadata; header layout as the Python library writes it', () => {
  const path = join(dir, 'all.safetensors');
  const tensors = sample();
  writeSafetensors(path, tensors, { format: 'pt', note: 'hi' });
  const f = openSafetensors(path);
  try {
    assert.deepEqual(f.metadata, { format: 'pt', note: 'hi' });
    assert.deepEqual(f.names().sort(), [...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const r = f.read(name);
      assert.equal(r.dtype, t.dtype, name);
      assert.deepEqual(r.shape, t.shape, name);
      assert.deepEqual(Buffer.from(r.data), Buffer.from(t.data), name);
    }
  } finally {
    f.close();
  }
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0, 'header padded to a multiple of 8');
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  assert.equal(bytes.subarray(8, 8 + n).toString('utf8').trimEnd(), JSON.stringify(header));
  // offsets tile the data section exactly, in name order
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  assert.deepEqual(names, [...names].sort());
  let end = 0;
  for (const k of names) {
    assert.equal(header[k].data_offsets[0], end);
    end = header[k].data_offsets[1];
  }
  assert.equal(8 + n + end, bytes.byteLength);
  assert.deepEqual(readdirSync(dir).filter((x) => x.includes('.tmp-')), [], 'no temp files left');
});

test('reads a file assembled by hand the way safetensors (Python) lays it out', () => {
  const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[1,2],"data_offsets":[8,10]}}';
  const hb = Buffer.from(header.padEnd(Math.ceil(header.length / 8) * 8, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.byteLength));
  const data = Buffer.concat([Buffer.from(new Float32Array([3.5, -1]).buffer), Buffer.from([0xff, 0x02])]);
  const path = join(dir, 'hand.safetensors');
  writeFileSync(path, Buffer.concat([len, hb, data]));
  const f = openSafetensors(path);
  assert.deepEqual(f.metadata, {});
  assert.deepEqual(Array.from(toFloat32(f.read('a'))), [3.5, -1]);
  assert.deepEqual(Array.from(toFloat32(f.read('b'))), [-1, 2]);
  assert.deepEqual(f.info('b'), { dtype: 'I8', shape: [1, 2], dataOffsets: [8, 10] });
  assert.throws(() => f.read('c'), (e: CliniloraError) => e.code === 'E_MISSING' && e.message.includes("'c'"));
  f.close();
});

test('lazy tensors are loaded one at a time, and a wrong-sized load is rejected', () => {
  const loads: string[] = [];
  const lazy = (name: string, values: number[]): LazyTensor => ({
    dtype: 'F32',
    shape: [values.length],
    load: () => {
      loads.push(name);
      return fromFloat32(values, [values.length], 'F32').data;
    },
  });
  const path = join(dir, 'lazy.safetensors');
  writeSafetensors(path, [['b', lazy('b', [1, 2])], ['a', lazy('a', [3])]]);
  assert.deepEqual(loads, ['a', 'b']);
  const f = openSafetensors(path);
  assert.deepEqual(Array.from(toFloat32(f.read('b'))), [1, 2]);
  f.close();
  const bad: LazyTensor = { dtype: 'F32', shape: [3], load: () => new Uint8Array(8) };
  assert.throws(() => writeSafetensors(join(dir, 'bad.safetensors'), [['x', bad]]), (e: CliniloraError) => e.code === 'E_SHAPE' && e.message.includes("'x'"));
  assert.deepEqual(readdirSync(dir).filter((x) => x.includes('.tmp-')), [], 'failed write leaves no temp file');
});

/** Writes a file with the given header object (or raw header text) and data bytes. */
function craft(name: string, header: object | string, dataBytes: number): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const hb = Buffer.from(text);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.byteLength));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, hb, Buffer.alloc(dataBytes)]));
  return path;
}

function expectError(path: string, code: string, ...fragments: string[]): void {
  assert.throws(
    () => openSafetensors(path),
    (e: unknown) => {
      assert.ok(e instanceof CliniloraError, String(e));
      assert.equal(e.code, code, e.message);
      assert.ok(e.message.includes(path), `names the file: ${e.message}`);
      for (const f of fragments) assert.ok(e.message.includes(f), `'${f}' in: ${e.message}`);
      return true;
    },
  );
}

test('malformed files give E_FORMAT/E_DTYPE errors naming the file, tensor, expected and found', () => {
  const short = join(dir, 'short.safetensors');
  writeFileSync(short, Buffer.from([1, 2, 3]));
  expectError(short, 'E_FORMAT', 'too short', '3 bytes');

  const pastEnd = join(dir, 'past.safetensors');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(1000n);
  writeFileSync(pastEnd, Buffer.concat([len, Buffer.from('{}')]));
  expectError(pastEnd, 'E_FORMAT', 'past the end', '1000');

  expectError(craft('nojson.safetensors', '{"a": nope', 0), 'E_FORMAT', 'not valid JSON');
  expectError(craft('array.safetensors', '[1,2]', 0), 'E_FORMAT', 'not a JSON object');
  expectError(craft('dtype.safetensors', { w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2), 'E_DTYPE', "'w'", 'F8_E4M3');
  expectError(craft('size.safetensors', { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20), 'E_FORMAT', "'w'", '24 bytes', '20 bytes');
  expectError(
    craft('overlap.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
    'E_FORMAT',
    'overlaps',
    "'b'",
    "'a'",
  );
  expectError(craft('outside.safetensors', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 10), 'E_FORMAT', "'a'", 'past the end', 'truncated');
  expectError(craft('meta.safetensors', { __metadata__: { n: 1 } }, 0), 'E_FORMAT', '__metadata__');
  expectError(craft('shape.safetensors', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0), 'E_FORMAT', "'a'", 'shape');
  assert.throws(() => openSafetensors(join(dir, 'nope.safetensors')), (e: CliniloraError) => e.code === 'E_MISSING');

  // a good file cut short: the last tensor's data is missing
  const good = join(dir, 'good.safetensors');
  writeSafetensors(good, sample());
  const bytes = readFileSync(good);
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, bytes.subarray(0, bytes.byteLength - 3));
  expectError(cut, 'E_FORMAT', 'truncated');
});
