/**
 * bitsandbytes' 8-bit blockwise quantization with the signed "dynamic" map, as used for NF4 double
 * quantization (`compress_statistics`): the per-block absmax values of the NF4 weight, minus their mean,
 * are quantized in blocks of 256 to one byte each.
 *
 * Faithful to bitsandbytes:
 * - `createDynamicMap` follows `functional.create_dynamic_map(signed=True, max_exponent_bits=7,
 *   total_bits=8)` with its float32 arithmetic (torch.linspace, the mean of neighbouring boundaries,
 *   the power-of-ten scale): 127 positive values, their negatives, 0 and 1.0, sorted. torch may differ
 *   from this emulation in the last bit of a few entries (its vectorized linspace); files carry the map
 *   (`nested_quant_map`), so both sides always dequantize with the same table.
 * - `quantizeBlockwise8` scales each value by float32(1/absmax) and picks the code with the CUDA kernel's
 *   rule (`dQuantize<0>`: a 7-step binary search, then the nearer of the pivot and its neighbour by
 *   comparing with the float32 midpoint), so ties resolve as bitsandbytes resolves them.
 */
const f32 = Math.fround;

/** 10^(-6+i), i = 0..6, written out (Math.pow may differ from Python's `10 ** -k` in the last bit). */
const POW10 = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];

/** torch.linspace(start, end, steps) in float32 (its CPU kernel: from `start` for the first half, from `end` for the rest). */
function linspaceF32(start: number, end: number, steps: number): number[] {
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(i < halfway ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1))));
  return out;
}

let dynamicMap: Float32Array | undefined;

/** The 256-entry signed dynamic map, sorted ascending: [-0.99296875…, …, 0, …, 1]. Shared; do not mutate. */
export function createDynamicMap(): Float32Array {
  if (dynamicMap !== undefined) return dynamicMap;
  const data: number[] = [];
  const maxExponentBits = 7;
  for (let i = 0; i < maxExponentBits; i++) {
    const fractionItems = 2 ** i + 1; // non_sign_bits = 7, so 2^(i + 7 - 7) + 1
    const b = linspaceF32(0.1, 1, fractionItems);
    const scale = f32(POW10[i]!);
    for (let j = 0; j + 1 < b.length; j++) {
      const mean = f32(f32(b[j]! + b[j + 1]!) / 2);
      data.push(f32(scale * mean), f32(-scale * mean));
    }
  }
  data.push(0, 1);
  data.sort((a, b) => a - b);
  dynamicMap = Float32Array.from(data);
  return dynamicMap;
}

/** bitsandbytes `dQuantize<0>` on a sorted 256-entry code: index of the code nearest to x. */
export function quantizeToCode8(code: Float32Array, x: number): number {
  let pivot = 127;
  let upperPivot = 255;
  let lowerPivot = 0;
  let lower = -1;
  let upper = 1;
  let val = code[pivot]!;
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot]!;
  }
  if (upperPivot === 255) upper = code[upperPivot]!;
  if (lowerPivot === 0) lower = code[lowerPivot]!;
  if (x > val) {
    const midpoint = f32(f32(upper + val) * 0.5);
    return x > midpoint ? upperPivot : pivot;
  }
  const midpoint = f32(f32(lower + val) * 0.5);
  return x < midpoint ? lowerPivot : pivot;
}

export interface Blockwise8 {
  /** One code index per value. */
  q: Uint8Array;
  /** max |value| per block of `blockSize`. */
  absmax: Float32Array;
  blockSize: number;
}

/** bitsandbytes `quantize_blockwise(A, code, blocksize)` for float32 input. */
export function quantizeBlockwise8(values: Float32Array, code: Float32Array, blockSize = 256): Blockwise8 {
  const n = values.length;
  const blocks = Math.ceil(n / blockSize);
  const q = new Uint8Array(n);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const end = Math.min(n, start + blockSize);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(values[i]!));
    absmax[b] = m;
    const inv = f32(1 / m); // the kernel multiplies by the float32 reciprocal
    for (let i = start; i < end; i++) q[i] = quantizeToCode8(code, f32(values[i]! * inv));
  }
  return { q, absmax, blockSize };
}

/** bitsandbytes `dequantize_blockwise`: value = code[q] · absmax[block], in float32. */
export function dequantizeBlockwise8(q: Uint8Array, absmax: Float32Array, code: Float32Array, blockSize = 256): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = code[q[i]!]! * absmax[Math.floor(i / blockSize)]!;
  return out;
}
