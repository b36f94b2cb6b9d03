/**
 * ggml's block quantizations as its reference C code defines them (Q8_0, Q4_0), plus the float
 * types, for GGUF tensor data: encode float32 values into a type's bytes, and decode them back.
 */
import { CliniloraError } from '../errors.ts';
import { f16BitsToF32, f32ToF16Bits, fromFloat32, toFloat32 } from './tensor.ts';

export type GgmlType = 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q8_0';


/** roundf: halves away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/** Q8_0: blocks of 32 → fp16 d = absmax/127, int8 q = roundf(x/d); all arithmetic in float32 as ggml. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % 32 !== 0) throw new CliniloraError('E_SHAPE', 'Q8_0 needs a multiple of 32 values', { found: `${x.length}` });
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[b * 34] = h & 0xff;
    out[b * 34 + 1] = h >>> 8;
    for (let j = 0; j < 32; j++) out[b * 34 + 2 + j] = roundAway(Math.fround(x[b * 32 + j]! * id)) & 0xff;
  }
  return out;
}

/** Q4_0: blocks of 32 → fp16 d = max/-8 (max: the value of largest magnitude), q = min(15, trunc(x/d + 8.5)). */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  if (x.length % 32 !== 0) throw new CliniloraError('E_SHAPE', 'Q4_0 needs a multiple of 32 values', { found: `${x.length}` });
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b * 32 + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[b * 18] = h & 0xff;
    out[b * 18 + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) {
      // first half of the block in the low nibbles, second half in the high nibbles
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[b * 32 + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[b * 32 + 16 + j]! * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Decodes `n` values of a ggml type to float32. */
export function dequantize(type: GgmlType, data: Uint8Array, n: number): Float32Array {
  switch (type) {
    case 'F32':
    case 'F16':
    case 'BF16':
      return toFloat32({ dtype: type, shape: [n], data });
    case 'Q8_0': {
      const out = new Float32Array(n);
      for (let b = 0; b < n / 32; b++) {
        const d = f16BitsToF32(data[b * 34]! | (data[b * 34 + 1]! << 8));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = ((data[b * 34 + 2 + j]! << 24) >> 24) * d;
      }
      return out;
    }
    case 'Q4_0': {
      const out = new Float32Array(n);
      for (let b = 0; b < n / 32; b++) {
        const d = f16BitsToF32(data[b * 18]! | (data[b * 18 + 1]! << 8));
        for (let j = 0; j < 16; j++) {
          const q = data[b * 18 + 2 + j]!;
          out[b * 32 + j] = ((q & 0x0f) - 8) * d;
          out[b * 32 + 16 + j] = ((q >>> 4) - 8) * d;
        }
      }
      return out;
    }
  }
}

/** Float values encoded in a ggml type. */
export function encodeGgml(type: GgmlType, values: Float32Array): Uint8Array {
  switch (type) {
    case 'F32':
    case 'F16':
    case 'BF16':
      return fromFloat32(values, [values.length], type).data;
    case 'Q8_0':
      return quantizeQ8_0(values);
    case 'Q4_0':
      return quantizeQ4_0(values);
  }
}

