/**
 * A neutral raw tensor: a dtype, a shape and little-endian bytes. The file formats (safetensors,
 * HF checkpoints, PEFT adapters, GGUF) read and write these; the model code turns them into floats
 * with `toFloat32` and back with `fromFloat32`. Half and bfloat16 conversions are exact IEEE, with
 * round-to-nearest-even on the way down, so a round trip through a file matches PyTorch's bits.
 */
import { CliniloraError } from '../errors.ts';

export type DType = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'I32' | 'I64';

export interface RawTensor {
  dtype: DType;
  shape: number[];
  /** Little-endian element bytes, row-major (C order); length = numel(shape) · DTYPE_BYTES[dtype]. */
  data: Uint8Array;
}

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, I32: 4, I64: 8 };
export const DTYPES: readonly DType[] = ['F32', 'F16', 'BF16', 'I8', 'U8', 'I32', 'I64'];

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

/** Number of elements of a shape ([] is a scalar: 1 element). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes a tensor of this dtype and shape occupies. */
export function byteSize(dtype: DType, shape: readonly number[]): number {
  return numel(shape) * DTYPE_BYTES[dtype];
}

// Scratch views for reinterpreting float32 bits.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, round to nearest even; overflow → ±inf, NaN stays NaN. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const m = mant | 0x800000; // 24-bit significand with the implicit 1; value = m · 2^(exp-150)
  const e = exp - 112; // half exponent field if normal (127 - 15 = 112)
  if (e >= 1) {
    // normal half: keep 11 significant bits; a rounding carry bumps the exponent (up to inf)
    const q = roundShift(m, 13);
    const h = (e << 10) + (q - 0x400);
    return h >= 0x7c00 ? sign | 0x7c00 : sign | h;
  }
  // subnormal half: value / 2^-24 = m · 2^(exp-126)
  const shift = 126 - exp;
  if (shift > 24) return sign; // below half of the smallest subnormal
  return sign | roundShift(m, shift); // a carry to 0x400 is the smallest normal, as it should be
}

/** m / 2^s rounded to nearest, ties to even (m < 2^24, 1 ≤ s ≤ 24). */
function roundShift(m: number, s: number): number {
  const q = m >>> s;
  const rest = m & ((1 << s) - 1);
  const half = 1 << (s - 1);
  return rest > half || (rest === half && (q & 1) === 1) ? q + 1 : q;
}

let halfTable: Float32Array | undefined;

/** IEEE half bits → float (exact; subnormals, ±inf and NaN included). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** All 65536 halves decoded once (256 KiB), so bulk decoding is one lookup an element. */
function halfLookup(): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = f16BitsToF32(h);
  }
  return halfTable;
}

/** float32 → bfloat16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) / 65536) >>> 0 & 0xffff;
}

function view(raw: RawTensor): DataView {
  return new DataView(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength);
}

function checkSize(raw: RawTensor, what: string): number {
  const n = numel(raw.shape);
  const want = n * DTYPE_BYTES[raw.dtype];
  if (raw.data.byteLength !== want) {
    throw new CliniloraError('E_SHAPE', `${what}: tensor data size does not match its shape`, {
      expected: `${want} bytes (${raw.dtype} [${raw.shape.join(', ')}])`,
      found: `${raw.data.byteLength} bytes`,
    });
  }
  return n;
}

/** Decodes any supported dtype to float32 (I64 beyond ±2^53 loses precision). */
export function toFloat32(raw: RawTensor): Float32Array {
  const n = checkSize(raw, 'toFloat32');
  const out = new Float32Array(n);
  const d = raw.data;
  switch (raw.dtype) {
    case 'F32': {
      // Copy the bytes so the result owns an aligned buffer (`d` may sit at any offset).
      new Uint8Array(out.buffer).set(d);
      return out;
    }
    case 'F16': {
      const t = halfLookup();
      for (let i = 0; i < n; i++) out[i] = t[d[2 * i]! | (d[2 * i + 1]! << 8)]!;
      return out;
    }
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = ((d[2 * i]! | (d[2 * i + 1]! << 8)) << 16) >>> 0;
      return out;
    }
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = (d[i]! << 24) >> 24;
      return out;
    case 'U8':
      for (let i = 0; i < n; i++) out[i] = d[i]!;
      return out;
    case 'I32': {
      const v = view(raw);
      for (let i = 0; i < n; i++) out[i] = v.getInt32(4 * i, true);
      return out;
    }
    case 'I64': {
      const v = view(raw);
      for (let i = 0; i < n; i++) out[i] = Number(v.getBigInt64(8 * i, true));
      return out;
    }
  }
}

/** Encodes float values as F32, F16 or BF16 (round to nearest even). */
export function fromFloat32(values: ArrayLike<number>, shape: readonly number[], dtype: 'F32' | 'F16' | 'BF16'): RawTensor {
  const n = numel(shape);
  if (values.length !== n) {
    throw new CliniloraError('E_SHAPE', 'fromFloat32: value count does not match the shape', {
      expected: `${n} values for [${shape.join(', ')}]`,
      found: `${values.length}`,
    });
  }
  const data = new Uint8Array(n * DTYPE_BYTES[dtype]);
  if (dtype === 'F32') {
    const src = values instanceof Float32Array ? values : Float32Array.from(values);
    data.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  } else {
    const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < n; i++) {
      const h = conv(values[i]!);
      data[2 * i] = h & 0xff;
      data[2 * i + 1] = h >>> 8;
    }
  }
  return { dtype, shape: [...shape], data };
}

export type TypedArrayLike = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

/** Wraps a typed array as a RawTensor without copying (F32/I8/U8/I32/I64 by array type). */
export function rawFromTyped(values: TypedArrayLike, shape: readonly number[]): RawTensor {
  const dtype: DType =
    values instanceof Float32Array ? 'F32'
    : values instanceof Int8Array ? 'I8'
    : values instanceof Uint8Array ? 'U8'
    : values instanceof Int32Array ? 'I32'
    : 'I64';
  const raw: RawTensor = { dtype, shape: [...shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  checkSize(raw, 'rawFromTyped');
  return raw;
}

/** Half-precision bits (Uint16Array, as ggml and numpy hold them) wrapped as an F16 RawTensor. */
export function rawFromHalfBits(bits: Uint16Array, shape: readonly number[], dtype: 'F16' | 'BF16' = 'F16'): RawTensor {
  const raw: RawTensor = { dtype, shape: [...shape], data: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength) };
  checkSize(raw, 'rawFromHalfBits');
  return raw;
}
