/**
 * NF4 (4-bit NormalFloat) blockwise quantization exactly as bitsandbytes' `quantize_4bit(quant_type='nf4')`:
 * flatten the [out, in] weight row-major, blocks of 64, absmax per block, each value scaled by
 * float32(1/absmax) and mapped to one of 16 codes by bitsandbytes' decision tree (`dQuantizeNF4`, whose
 * thresholds are the float32 midpoints between neighbouring codes; a value equal to a threshold goes to
 * the lower code), two codes a byte with the FIRST element in the HIGH nibble.
 *
 * Double quantization (`compress_statistics=True`): offset = mean(absmax); (absmax − offset) is quantized
 * blockwise in blocks of 256 with the signed dynamic map (quant-blockwise8.ts). Dequantized:
 * absmax[b] = code2[qAbsmax[b]] · absmax2[b / 256] + offset.
 *
 * Memory per weight: 4 bits + 32/64 bits of absmax = 4.5 bits; with double quant 4 + 8/64 + 32/(64·256)
 * ≈ 4.127 bits. Nothing here keeps a float copy of the weight.
 */
import { createDynamicMap, dequantizeBlockwise8, quantizeBlockwise8 } from './quant-blockwise8.ts';
import { CliniloraError } from '../errors.ts';

const f32 = Math.fround;

/** The 16 NF4 codes (bitsandbytes `get_4bit_type('nf4')`), index = the 4-bit value. */
export const NF4_CODES: Float32Array = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** The 15 decision thresholds: float32 midpoints between neighbouring codes (as in `dQuantizeNF4`). */
export const NF4_THRESHOLDS: Float32Array = Float32Array.from(
  Array.from({ length: 15 }, (_, k) => (NF4_CODES[k]! + NF4_CODES[k + 1]!) / 2),
);

export const NF4_BLOCK_SIZE = 64;
export const NF4_NESTED_BLOCK_SIZE = 256;

/** 4-bit index for a scaled value x ∈ [-1, 1]: how many thresholds x exceeds (4 comparisons). NaN → 0. */
export function nf4Index(x: number): number {
  const t = NF4_THRESHOLDS;
  // Binary search over the sorted thresholds; same outcome as bitsandbytes' tree (strict `x > t`).
  let lo = 0;
  let hi = 15; // answer in [lo, hi]
  while (lo < hi) {
    const mid = (lo + hi) >> 1; // threshold between code mid and mid+1
    if (x > t[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Double-quantized absmax: one byte per 64-block plus a float per 256 of those, plus the offset. */
export interface NF4NestedAbsmax {
  /** [blocks] dynamic-map indices of (absmax − offset). */
  qAbsmax: Uint8Array;
  /** [ceil(blocks / 256)] absmax of (absmax − offset) per nested block. */
  absmax2: Float32Array;
  /** mean of the original absmax values (float32). */
  offset: number;
  /** 256. */
  blockSize2: number;
  /** The 256-entry map used for qAbsmax (bitsandbytes' `nested_quant_map`). */
  code2: Float32Array;
}

export interface NF4Weight {
  /** [rows, cols] of the original weight, e.g. [out, in]. */
  shape: [number, number];
  /** ceil(rows·cols / 2) bytes; element e sits in byte e >> 1, high nibble when e is even. */
  data: Uint8Array;
  /** [ceil(rows·cols / blockSize)] per-block absmax, or its double-quantized form. */
  absmax: Float32Array | NF4NestedAbsmax;
  blockSize: number;
}

export interface QuantizeNF4Options {
  /** bitsandbytes `compress_statistics` / transformers `bnb_4bit_use_double_quant`. Default false. */
  doubleQuant?: boolean;
  /** Default 64 (QLoRA). bitsandbytes accepts 64…4096 (powers of two). */
  blockSize?: number;
}

export function isNested(a: Float32Array | NF4NestedAbsmax): a is NF4NestedAbsmax {
  return !(a instanceof Float32Array);
}

/** Quantizes a row-major float32 weight of `shape` to NF4. */
export function quantizeNF4(w: Float32Array, shape: readonly [number, number], opts: QuantizeNF4Options = {}): NF4Weight {
  const [rows, cols] = shape;
  const n = rows * cols;
  if (w.length !== n) {
    throw new CliniloraError('E_SHAPE', 'quantizeNF4: weight length does not match its shape', {
      field: 'w',
      expected: `${rows}×${cols} = ${n} values`,
      found: `${w.length}`,
    });
  }
  const bs = opts.blockSize ?? NF4_BLOCK_SIZE;
  if (!Number.isInteger(Math.log2(bs)) || bs < 64 || bs > 4096) {
    throw new CliniloraError('E_ARG', 'quantizeNF4: unsupported block size', { field: 'blockSize', expected: '64, 128, …, 4096', found: String(bs) });
  }
  const blocks = Math.ceil(n / bs);
  const absmax = new Float32Array(blocks);
  const data = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < blocks; b++) {
    const start = b * bs;
    const end = Math.min(n, start + bs);
    let m = 0;
    for (let e = start; e < end; e++) m = Math.max(m, Math.abs(w[e]!));
    absmax[b] = m;
    // bitsandbytes multiplies by the float32 reciprocal. An all-zero block gives 0·∞ = NaN → index 0,
    // as bitsandbytes does; it dequantizes to code[0]·0 = 0 all the same.
    const inv = f32(1 / m);
    for (let e = start; e < end; e++) {
      const q = nf4Index(f32(w[e]! * inv));
      if ((e & 1) === 0) data[e >> 1] = q << 4;
      else data[e >> 1]! |= q;
    }
    // An odd total leaves the last low nibble: bitsandbytes fills it with the code of a padded 0.
    if (end === n && (n & 1) === 1) data[n >> 1]! |= nf4Index(f32(0 * inv));
  }
  if (!opts.doubleQuant) return { shape: [rows, cols], data, absmax, blockSize: bs };
  return { shape: [rows, cols], data, absmax: doubleQuantize(absmax), blockSize: bs };
}

/** bitsandbytes' compress_statistics: offset = mean(absmax); quantize (absmax − offset) 8-bit in blocks of 256. */
export function doubleQuantize(absmax: Float32Array): NF4NestedAbsmax {
  let sum = 0;
  for (let i = 0; i < absmax.length; i++) sum += absmax[i]!;
  const offset = f32(sum / absmax.length);
  const centered = new Float32Array(absmax.length);
  for (let i = 0; i < absmax.length; i++) centered[i] = absmax[i]! - offset;
  const code2 = createDynamicMap();
  const { q, absmax: absmax2 } = quantizeBlockwise8(centered, code2, NF4_NESTED_BLOCK_SIZE);
  return { qAbsmax: q, absmax2, offset, blockSize2: NF4_NESTED_BLOCK_SIZE, code2 };
}

/** The float32 absmax per 64-block (dequantizing the nested form: code2[q]·absmax2 + offset). */
export function nf4BlockAbsmax(q: NF4Weight): Float32Array {
  const a = q.absmax;
  if (!isNested(a)) return a;
  const out = dequantizeBlockwise8(a.qAbsmax, a.absmax2, a.code2, a.blockSize2);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! + a.offset;
  return out;
}

/** Packed bytes this weight holds (data + absmax state; the shared code tables are not counted). */
export function nf4Bytes(q: NF4Weight): number {
  const a = q.absmax;
  const stats = isNested(a) ? a.qAbsmax.byteLength + a.absmax2.byteLength + 4 : a.byteLength;
  return q.data.byteLength + stats;
}

/**
 * Row-major dequantization: w[e] = code[nibble(e)] · absmax[e / blockSize], shape [rows, cols].
 * Per block, the 16 codes are scaled once (float32, the same product bitsandbytes forms per element).
 */
export function dequantizeNF4(q: NF4Weight, out?: Float32Array): Float32Array {
  const [rows, cols] = q.shape;
  const n = rows * cols;
  const res = out ?? new Float32Array(n);
  const absmax = nf4BlockAbsmax(q);
  const bs = q.blockSize;
  const data = q.data;
  const lut = new Float32Array(16); // code · absmax of the current block
  // Blocks are ≥ 64 long and even, so a block never splits a byte.
  for (let b = 0, start = 0; start < n; b++, start += bs) {
    const scale = absmax[b]!;
    for (let k = 0; k < 16; k++) lut[k] = NF4_CODES[k]! * scale;
    const end = Math.min(n, start + bs);
    let e = start;
    for (; e + 1 < end; e += 2) {
      const byte = data[e >> 1]!;
      res[e] = lut[byte >> 4]!;
      res[e + 1] = lut[byte & 15]!;
    }
    if (e < end) res[e] = lut[data[e >> 1]! >> 4]!;
  }
  return res;
}
