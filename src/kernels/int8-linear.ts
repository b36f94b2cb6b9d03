/**
 * A frozen int8 linear layer with LLM.int8 semantics (bitsandbytes `MatMul8bitLt` forward, inference
 * weights: `has_fp16_weights=False`).
 *
 * threshold > 0 (mixed decomposition, bitsandbytes default 6.0):
 *   outlier entries   = |x| ≥ threshold; outlier columns = input features with any outlier entry
 *   rowStats [N]      = max |x| over each row with the outlier entries set to 0
 *   xq [N, in]        = round(x · (127 / rowStats)), outlier columns set to 0      (int8 values)
 *   y  [N, out]       = (xq · Wqᵀ) · (rowStats ⊗ SCB) · 1/127²                     (vector-wise int8 path)
 *                     + x[:, outlier] · dequant(W)[:, outlier]ᵀ                    (float path)
 * threshold = 0 (weight-only int8): y = x · dequant(W)ᵀ with dequant(W) = Wq · SCB / 127. (bitsandbytes
 *   itself would still quantize x to int8 here; weight-only keeps the activations exact.)
 *
 * The integer product runs as a float32 matMul on integer-valued tensors. It is exact: the input
 * dimension is cut into chunks of K_CHUNK = 1024, so every partial sum inside one chunk is an integer of
 * magnitude ≤ 1024 · 127² = 16,516,096 < 2^24 = 16,777,216, which float32 holds exactly whatever order
 * (or FMA) the backend accumulates in. The chunk results are then added in float32, which rounds (by at
 * most 2^-24 relative) only once a row's total exceeds 2^24 — far below the int8 quantization error.
 *
 * Layout: like NF4Linear, products are formed as (W · xᵀ)ᵀ with W row-major [out, in] — plain matMuls,
 * only the small activations are transposed.
 * Backward (weight frozen): dx = dy · dequant(W), the straight-through gradient bitsandbytes uses too.
 * With the native addon active, the weight-only forward and the backward read the int8 codes directly
 * (native-quant.ts); the mixed forward stays here.
 */
import { tf } from '../backend/tf.ts';
import { int8MatMul, int8MatMulT } from '../backend/native-quant.ts';
import { FrozenQuantLinear } from './frozen-linear.ts';
import { INV_127_SQ, dequantizeInt8, dequantizeInt8Columns, int8Bytes, int8CodesChunk, quantizeInt8, type Int8Weight } from './int8.ts';

/** Largest input chunk whose int8·int8 partial sums stay exact in float32 (2^24 / 127² = 1040.2). */
export const K_CHUNK = 1024;

/** transformers' `llm_int8_threshold` default. */
export const DEFAULT_INT8_THRESHOLD = 6.0;

export class Int8Linear extends FrozenQuantLinear {
  readonly kind = 'int8';
  /** The row-wise int8 weight, shape [out, in]. */
  readonly q: Int8Weight;
  /** Outlier threshold on |x|; 0 = weight-only int8. */
  readonly threshold: number;

  constructor(q: Int8Weight, opts: { threshold?: number } = {}) {
    super(q.shape);
    this.q = q;
    this.threshold = opts.threshold ?? DEFAULT_INT8_THRESHOLD;
  }

  /** Quantizes a float32 [out, in] weight (HF layout). */
  static fromFloat(weightOutIn: Float32Array, outFeatures: number, inFeatures: number, opts: { threshold?: number } = {}): Int8Linear {
    return new Int8Linear(quantizeInt8(weightOutIn, [outFeatures, inFeatures]), opts);
  }

  protected override forwardValue(x: tf.Tensor2D): tf.Tensor2D {
    return this.threshold > 0 ? mixedForward(this.q, x, this.threshold) : super.forwardValue(x);
  }

  /** Weight-only (threshold 0) only: the mixed decomposition keeps its own exact integer path. */
  protected override nativeForward(x: tf.Tensor2D): tf.Tensor2D | undefined {
    return int8MatMulT(x, this.q);
  }

  protected override nativeTransposed(dy: tf.Tensor2D): tf.Tensor2D | undefined {
    return int8MatMul(dy, this.q);
  }

  weight(): tf.Tensor2D {
    return tf.tensor2d(dequantizeInt8(this.q), [this.outFeatures, this.inFeatures]);
  }

  bytes(): number {
    return int8Bytes(this.q);
  }
}

/** LLM.int8 mixed decomposition (see the file comment). */
function mixedForward(q: Int8Weight, x: tf.Tensor2D, threshold: number): tf.Tensor2D {
  const [out, inF] = q.shape;
  return tf.tidy(() => {
    const absX = tf.abs(x);
    const isOutlier = tf.greaterEqual(absX, threshold); // bool [N, in]
    const colFlags = tf.any(isOutlier, 0).dataSync(); // [in]: which input features carry outliers
    const outlierCols: number[] = [];
    for (let c = 0; c < inF; c++) if (colFlags[c]) outlierCols.push(c);

    // Row statistics without the outlier entries (bitsandbytes zeroes them before the row max).
    const rowStats = tf.max(tf.where(isOutlier, tf.zerosLike(absX), absX), 1, true); // [N, 1]
    const scale = tf.where(tf.greater(rowStats, 0), tf.div(127, rowStats), tf.zerosLike(rowStats)); // [N, 1]
    let xq: tf.Tensor = tf.round(tf.mul(x, scale)); // [N, in], integers in [-127, 127] outside the outlier columns
    if (outlierCols.length > 0) {
      const keep = new Float32Array(inF).fill(1);
      for (const c of outlierCols) keep[c] = 0;
      xq = tf.mul(xq, tf.tensor2d(keep, [1, inF]));
    }
    const xqT = tf.transpose(xq); // [in, N]

    // Exact integer product Wq · xqᵀ, chunked over the input dimension.
    let accT: tf.Tensor | undefined; // [out, N]
    for (let k0 = 0; k0 < inF; k0 += K_CHUNK) {
      const k1 = Math.min(inF, k0 + K_CHUNK);
      const wq = tf.tensor2d(int8CodesChunk(q, k0, k1), [out, k1 - k0]); // [out, k]
      const xs = k0 === 0 && k1 === inF ? xqT : tf.slice(xqT, [k0, 0], [k1 - k0, -1]); // [k, N]
      const part = tf.matMul(wq, xs as tf.Tensor2D); // [out, N]
      accT = accT === undefined ? part : tf.add(accT, part);
    }
    const scb = tf.tensor2d(q.rowAbsmax, [out, 1]);
    let yT: tf.Tensor = tf.mul(tf.mul(accT!, tf.mul(scb, tf.transpose(rowStats))), INV_127_SQ); // [out, N]

    if (outlierCols.length > 0) {
      // Float path: dequant(W)[:, outlier] · x[:, outlier]ᵀ, the weight columns dequantized as bitsandbytes does.
      const sub = tf.tensor2d(dequantizeInt8Columns(q, outlierCols), [out, outlierCols.length]); // [out, nOutlier]
      const xoT = tf.transpose(tf.gather(x, tf.tensor1d(outlierCols, 'int32'), 1)); // [nOutlier, N]
      yT = tf.add(yT, tf.matMul(sub, xoT as tf.Tensor2D));
    }
    return tf.transpose(yT) as tf.Tensor2D;
  });
}
