/**
 * Embedding lookup and row gathers.
 *
 * `gatherRows(x, ids)`: y = x[ids] (forward: tf.gather). Backward: dx = scatter-add of dy into the
 * rows `ids` (tf.scatterND sums duplicate ids). tf.gather's own gradient needs UnsortedSegmentSum,
 * which the wasm backend lacks (FACTS.md), and a one-hot matmul costs V·N·D flops.
 * Used for the token embedding and for picking the hidden states at loss target positions.
 *
 * `Embedding`: the token table [V, D] stored as a float32 tensor (optionally a trainable variable),
 * or as fp16/bf16 bits in JS memory with the row gather done in JS — half the bytes, which matters
 * for Phi-3-mini's 32064 × 3072 table (394 MB in fp32). Half storage is frozen.
 */
import { tf } from '../backend/tf.ts';
import { withGrad } from './custom-grad.ts';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../io/tensor.ts';

/** x [V, D], ids [n] (values in [0, V)) → [n, D]; the gradient flows to x. */
export function gatherRows(x: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  const [V, D] = x.shape;
  const op = withGrad<[tf.Tensor]>(([xi]) => ({
    value: tf.gather(xi, tf.tensor1d(ids, 'int32')),
    // Tensors made in the forward are freed when it returns: make the indices again here.
    gradFunc: (dy) => [tf.scatterND(tf.tensor2d(ids, [ids.length, 1], 'int32'), dy, [V, D])],
  }));
  return op(x) as tf.Tensor2D;
}

// ---- half-precision bits ---------------------------------------------------------------------

export type HalfDtype = 'float16' | 'bfloat16';
export interface HalfBits {
  dtype: HalfDtype;
  bits: Uint16Array;
}

let f16Table: Float32Array | undefined;

/** fp16 bits → float32, through a 65536-entry table (256 KB, built once) for fast row gathers. */
function f16ToF32Table(): Float32Array {
  if (f16Table !== undefined) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32(h);
  f16Table = t;
  return t;
}

/** Packs float32 values into half bits. */
export function toHalfBits(data: Float32Array, dtype: HalfDtype): HalfBits {
  const bits = new Uint16Array(data.length);
  const conv = dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) bits[i] = conv(data[i]!);
  return { dtype, bits };
}

/** Unpacks half bits [start, start + n) into out (float32) at outOffset. */
export function halfToF32(h: HalfBits, start: number, n: number, out: Float32Array, outOffset = 0): void {
  if (h.dtype === 'float16') {
    const t = f16ToF32Table();
    for (let i = 0; i < n; i++) out[outOffset + i] = t[h.bits[start + i]!]!;
  } else {
    const u = new Uint32Array(out.buffer, out.byteOffset + outOffset * 4, n);
    for (let i = 0; i < n; i++) u[i] = h.bits[start + i]! << 16;
  }
}

// ---- the token embedding ------------------------------------------------------------------

export type EmbeddingStorage = 'float32' | HalfDtype;

export class Embedding {
  readonly vocabSize: number;
  readonly dim: number;
  readonly storage: EmbeddingStorage;
  /** [V, D] when stored as float32. */
  private readonly table?: tf.Variable<tf.Rank.R2> | tf.Tensor2D;
  private readonly half?: HalfBits;

  /**
   * `data` [V, D] row-major, float32 or half bits. `storage` converts as needed; `trainable` needs
   * float32 storage.
   */
  constructor(data: Float32Array | HalfBits, V: number, D: number, opts: { storage?: EmbeddingStorage; trainable?: boolean } = {}) {
    const n = data instanceof Float32Array ? data.length : data.bits.length;
    if (n !== V * D) throw new RangeError(`Embedding: ${n} values, expected ${V}×${D}`);
    this.vocabSize = V;
    this.dim = D;
    this.storage = opts.storage ?? (data instanceof Float32Array ? 'float32' : data.dtype);
    if (opts.trainable === true && this.storage !== 'float32') {
      throw new RangeError(`Embedding: a trainable embedding needs float32 storage, not ${this.storage}`);
    }
    if (this.storage === 'float32') {
      let f32: Float32Array;
      if (data instanceof Float32Array) f32 = data;
      else {
        f32 = new Float32Array(n);
        halfToF32(data, 0, n, f32);
      }
      const t = tf.tensor2d(f32, [V, D]);
      if (opts.trainable === true) {
        this.table = tf.variable(t, true);
        t.dispose();
      } else this.table = t;
    } else {
      this.half = data instanceof Float32Array || data.dtype !== this.storage
        ? toHalfBits(data instanceof Float32Array ? data : this.unpackAll(data), this.storage)
        : data;
    }
  }

  private unpackAll(h: HalfBits): Float32Array {
    const out = new Float32Array(h.bits.length);
    halfToF32(h, 0, h.bits.length, out);
    return out;
  }

  /** ids [N] → [N, D]. Out-of-range ids are an error (tf.gather would silently give zeros). */
  forward(ids: Int32Array): tf.Tensor2D {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(id >= 0 && id < this.vocabSize)) {
        throw new RangeError(`Embedding: token id ${id} at index ${i} is outside [0, ${this.vocabSize})`);
      }
    }
    if (this.table !== undefined) {
      return this.table instanceof tf.Variable && this.table.trainable
        ? gatherRows(this.table, ids)
        : tf.tidy(() => tf.gather(this.table!, tf.tensor1d(ids, 'int32')));
    }
    const D = this.dim;
    const out = new Float32Array(ids.length * D);
    for (let i = 0; i < ids.length; i++) halfToF32(this.half!, ids[i]! * D, D, out, i * D);
    return tf.tensor2d(out, [ids.length, D]);
  }

  /** The table as float32 [V, D] (a copy for half storage). */
  weightData(): Float32Array {
    if (this.table !== undefined) return this.table.dataSync() as Float32Array;
    return this.unpackAll(this.half!);
  }

  trainableVariables(): tf.Variable[] {
    return this.table instanceof tf.Variable && this.table.trainable ? [this.table] : [];
  }

  bytes(): number {
    return this.vocabSize * this.dim * (this.storage === 'float32' ? 4 : 2);
  }

  dispose(): void {
    this.table?.dispose();
  }
}
