/**
 * A float32 linear layer, y = x · Wᵀ. Frozen by default (a LoRA base); `trainable` makes W a variable
 * (used when pretraining the base).
 *
 * Layout: W is kept transposed, Wt [in, out], so the forward is a plain matMul. The wasm backend's
 * matMul with transpose flags is 15–30× slower than without (FACTS.md), so the custom gradient does
 * its transposes explicitly instead of passing flags.
 */
import { tf } from '../backend/tf.ts';
import type { Linear } from './linear.ts';
import { withGrad } from './custom-grad.ts';

export class FloatLinear implements Linear {
  readonly kind = 'float';
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Wt [in, out]. */
  readonly wt: tf.Variable<tf.Rank.R2>;
  private readonly trainable: boolean;
  /** Frozen path: x is the only op input, so the backward never computes a weight gradient. */
  private readonly frozenOp: (x: tf.Tensor) => tf.Tensor;

  /** `weight` is [out, in] row-major, as Hugging Face stores it. */
  constructor(weight: Float32Array, outFeatures: number, inFeatures: number, opts: { trainable?: boolean; name?: string } = {}) {
    if (weight.length !== outFeatures * inFeatures) {
      throw new RangeError(`FloatLinear: weight has ${weight.length} values, expected ${outFeatures}×${inFeatures}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.trainable = opts.trainable ?? false;
    const wt = tf.tidy(() => tf.transpose(tf.tensor2d(weight, [outFeatures, inFeatures])));
    this.wt = tf.variable(wt as tf.Tensor2D, this.trainable, opts.name);
    wt.dispose();
    // dx = dy · W = dy · wtᵀ; W stays out of the op's inputs (a frozen LoRA base needs no dW).
    this.frozenOp = withGrad<[tf.Tensor]>(([x]) => ({
      value: tf.matMul(x as tf.Tensor2D, this.wt),
      gradFunc: (dy) => [tf.tidy(() => tf.matMul(dy as tf.Tensor2D, tf.transpose(this.wt)))],
    }));
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return this.trainable ? matMulNN(x, this.wt) : (this.frozenOp(x) as tf.Tensor2D);
  }

  weight(): tf.Tensor2D {
    return tf.transpose(this.wt);
  }

  trainableVariables(): tf.Variable[] {
    return this.trainable ? [this.wt] : [];
  }

  bytes(): number {
    return this.inFeatures * this.outFeatures * 4;
  }

  dispose(): void {
    this.wt.dispose();
  }
}

/**
 * y = a · b for a [N, K], b [K, M], with a gradient that uses explicit transposes:
 * da = dy · bᵀ, db = aᵀ · dy.
 */
export function matMulNN(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return matMulNNOp(a, b) as tf.Tensor2D;
}

const matMulNNOp = withGrad<[tf.Tensor, tf.Tensor]>(([a, b], save) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy, [sa, sb]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(sb as tf.Tensor2D)),
      tf.matMul(tf.transpose(sa as tf.Tensor2D), dy as tf.Tensor2D),
    ],
  };
});
