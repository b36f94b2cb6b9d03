/**
 * Row-wise int8 weights as LLM.int8 / bitsandbytes store them (`int8_vectorwise_quant` on the weight):
 * for each output row, rowAbsmax = max |w|, q = round(w · (127 / rowAbsmax)) with round-half-to-even
 * (torch.round), in float32. Dequantized w ≈ q · rowAbsmax · (1/127) (bitsandbytes multiplies by
 * float32 7.874015718698502e-3). Memory: 1 byte a weight + 4 bytes a row.
 */
import { CliniloraError } from '../errors.ts';

const f32 = Math.fround;
/** float32(1/127), the constant bitsandbytes' `int8_vectorwise_dequant` multiplies by. */
export const INV_127 = f32(7.874015718698502e-3);
/**
 * float32(1/127²) as bitsandbytes' CUDA `int8_mm_dequant` writes it (MM_DEQUANT_CONST 6.200012e-05f).
 * Its pure-PyTorch fallback backend has 6.200124e-05 instead, 1.8e-5 relative off 1/127².
 */
export const INV_127_SQ = f32(6.200012e-5);

export interface Int8Weight {
  /** [rows, cols] = [out, in]. */
  shape: [number, number];
  /** rows·cols codes in [-127, 127], row-major. */
  data: Int8Array;
  /** [rows] max |w| of each row (bitsandbytes' SCB). */
  rowAbsmax: Float32Array;
}

/** Round half to even, as torch.round and tf.round do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** Quantizes a row-major float32 weight [rows, cols] to row-wise int8. */
export function quantizeInt8(w: Float32Array, shape: readonly [number, number]): Int8Weight {
  const [rows, cols] = shape;
  if (w.length !== rows * cols) {
    throw new CliniloraError('E_SHAPE', 'quantizeInt8: weight length does not match its shape', {
      field: 'w',
      expected: `${rows}×${cols} = ${rows * cols} values`,
      found: `${w.length}`,
    });
  }
  const data = new Int8Array(rows * cols);
  const rowAbsmax = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(w[base + c]!));
    rowAbsmax[r] = m;
    if (m === 0) continue; // an all-zero row stays 0 (bitsandbytes would compute 0·∞)
    const scale = f32(127 / m);
    for (let c = 0; c < cols; c++) data[base + c] = roundHalfEven(f32(w[base + c]! * scale));
  }
  return { shape: [rows, cols], data, rowAbsmax };
}

/** 256-entry table for one row: lut[q + 128] = float32(float32(q · absmax) · (1/127)). */
function rowLut(absmax: number, lut: Float32Array): Float32Array {
  for (let q = -128; q < 128; q++) lut[q + 128] = f32(q * absmax) * INV_127;
  return lut;
}

/** Row-major dequantization [rows, cols]. */
export function dequantizeInt8(q: Int8Weight, out?: Float32Array): Float32Array {
  const [rows, cols] = q.shape;
  const res = out ?? new Float32Array(rows * cols);
  const lut = new Float32Array(256);
  for (let r = 0; r < rows; r++) {
    rowLut(q.rowAbsmax[r]!, lut);
    const base = r * cols;
    for (let c = 0; c < cols; c++) res[base + c] = lut[q.data[base + c]! + 128]!;
  }
  return res;
}

/**
 * The integer codes of columns [c0, c1) as floats, row-major [rows, c1 − c0]: the int8 weight operand of
 * the vector-wise int8 product (float32 holds these integers, and their chunked products, exactly).
 */
export function int8CodesChunk(q: Int8Weight, c0: number, c1: number): Float32Array {
  const [rows, cols] = q.shape;
  const k = c1 - c0;
  const res = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const src = r * cols + c0;
    const dst = r * k;
    for (let j = 0; j < k; j++) res[dst + j] = q.data[src + j]!;
  }
  return res;
}

/** Dequantized columns `cols` (in order) as [rows, cols.length]. */
export function dequantizeInt8Columns(q: Int8Weight, cols: readonly number[]): Float32Array {
  const [rows, nCols] = q.shape;
  const res = new Float32Array(rows * cols.length);
  for (let r = 0; r < rows; r++) {
    const a = q.rowAbsmax[r]!;
    for (let j = 0; j < cols.length; j++) res[r * cols.length + j] = f32(q.data[r * nCols + cols[j]!]! * a) * INV_127;
  }
  return res;
}

/** Packed bytes: the codes plus one float32 scale a row. */
export function int8Bytes(q: Int8Weight): number {
  return q.data.byteLength + q.rowAbsmax.byteLength;
}
