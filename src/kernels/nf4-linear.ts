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
 * With the native addon active, both products read the packed codes directly (native-quant.ts).
 */
import { tf } from '../backend/tf.ts';
import { nf4MatMul, nf4MatMulT } from '../backend/native-quant.ts';
import { FrozenQuantLinear } from './frozen-linear.ts';
import { dequantizeNF4, isNested, nf4Bytes, quantizeNF4, type NF4Weight, type QuantizeNF4Options } from './nf4.ts';

export class NF4Linear extends FrozenQuantLinear {
  readonly kind = 'nf4';
  /** The packed weight, shape [out, in]. */
  readonly q: NF4Weight;

  constructor(q: NF4Weight) {
    super(q.shape);
    this.q = q;
  }

  /** Quantizes a float32 [out, in] weight (HF layout). */
  static fromFloat(weightOutIn: Float32Array, outFeatures: number, inFeatures: number, opts: QuantizeNF4Options = {}): NF4Linear {
    return new NF4Linear(quantizeNF4(weightOutIn, [outFeatures, inFeatures], opts));
  }

  /** Whether the absmax statistics are double-quantized. */
  get doubleQuant(): boolean {
    return isNested(this.q.absmax);
  }

  protected override nativeForward(x: tf.Tensor2D): tf.Tensor2D | undefined {
    return nf4MatMulT(x, this.q);
  }

  protected override nativeTransposed(dy: tf.Tensor2D): tf.Tensor2D | undefined {
    return nf4MatMul(dy, this.q);
  }

  weight(): tf.Tensor2D {
    return tf.tensor2d(dequantizeNF4(this.q), [this.outFeatures, this.inFeatures]);
  }

  bytes(): number {
    return nf4Bytes(this.q);
  }
}
