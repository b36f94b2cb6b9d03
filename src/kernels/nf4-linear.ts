/**
 * A frozen NF4 linear layer (QLoRA's base layer): y = x · dequant(W)ᵀ.
 *
 * The layer holds only the packed codes and the (possibly double-quantized) absmax — about 0.5 byte a
 * weight. Each call dequantizes into a temporary float32 tensor w = dequant(W) [out, in] (row-major, the
 * sequential and fastest order) and disposes it:
 *   forward:  y  = (w · xᵀ)ᵀ     [out, in]·[in, N] → [out, N] → [N, out]
 *   backward: dx = dy · w        [N, out]·[out, in]                (no gradient to W: it is frozen)
 * Only plain matMuls: wasm's matMul with transpose flags is 15–30× slower (FACTS.md). The forward
 * transposes the small activations instead of the big weight: measured on wasm (1 thread) for
 * [128 × 3072]·[3072 × 3072], (w · xᵀ)ᵀ ran at 31.7 GFLOP/s against 28.2 for x · wt with a pre-transposed
 * wt, and a weight transpose alone costs about as much as the matmul.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import type { Linear } from './linear.ts';
import { withGrad } from './custom-grad.ts';
import { dequantizeNF4, isNested, nf4Bytes, quantizeNF4, type NF4Weight, type QuantizeNF4Options } from './nf4.ts';

export class NF4Linear implements Linear {
  readonly kind = 'nf4';
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The packed weight, shape [out, in]. */
  readonly q: NF4Weight;
  private readonly op: (x: tf.Tensor) => tf.Tensor;

  constructor(q: NF4Weight) {
    this.q = q;
    [this.outFeatures, this.inFeatures] = q.shape;
    this.op = withGrad<[tf.Tensor]>(([x]) => ({
      value: this.withWeight((w) => matMulWT(x as tf.Tensor2D, w)),
      gradFunc: (dy) => [this.applyTransposed(dy as tf.Tensor2D)],
    }));
  }

  /** Runs f on a temporary dequantized weight [out, in], disposed afterwards. */
  private withWeight(f: (w: tf.Tensor2D) => tf.Tensor2D): tf.Tensor2D {
    const w = this.weight();
    try {
      return f(w);
    } finally {
      w.dispose();
    }
  }

  /** dy [N, out] → dy · dequant(W) [N, in] (the input gradient; also used by a fused lm-head backward). No gradient. */
  applyTransposed(dy: tf.Tensor2D): tf.Tensor2D {
    checkInput(dy, this.outFeatures, 'NF4Linear.applyTransposed');
    return this.withWeight((w) => tf.matMul(dy, w));
  }

  /** Quantizes a float32 [out, in] weight (HF layout). */
  static fromFloat(weightOutIn: Float32Array, outFeatures: number, inFeatures: number, opts: QuantizeNF4Options = {}): NF4Linear {
    return new NF4Linear(quantizeNF4(weightOutIn, [outFeatures, inFeatures], opts));
  }

  /** Whether the absmax statistics are double-quantized. */
  get doubleQuant(): boolean {
    return isNested(this.q.absmax);
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    checkInput(x, this.inFeatures, 'NF4Linear');
    return this.op(x) as tf.Tensor2D;
  }

  weight(): tf.Tensor2D {
    return tf.tensor2d(dequantizeNF4(this.q), [this.outFeatures, this.inFeatures]);
  }

  trainableVariables(): tf.Variable[] {
    return [];
  }

  bytes(): number {
    return nf4Bytes(this.q);
  }

  dispose(): void {
    // Nothing on the backend: the packed weight lives in typed arrays.
  }
}

/** x · wᵀ for x [N, in], w [out, in] as (w · xᵀ)ᵀ: plain matMuls, transposing only the activations. */
export function matMulWT(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.transpose(tf.matMul(w, tf.transpose(x))) as tf.Tensor2D);
}

/** x must be [N, inFeatures]. */
export function checkInput(x: tf.Tensor, inFeatures: number, op: string): void {
  if (x.rank !== 2 || x.shape[1] !== inFeatures) {
    throw new CliniloraError('E_SHAPE', `${op}.apply: input has the wrong shape`, {
      field: 'x',
      expected: `[N, ${inFeatures}]`,
      found: `[${x.shape.join(', ')}]`,
    });
  }
}
