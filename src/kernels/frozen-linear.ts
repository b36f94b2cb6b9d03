/**
 * What every frozen quantized linear (NF4, int8) shares: the weight lives packed in typed arrays and is
 * dequantized into a temporary float32 tensor w [out, in] per call, then disposed.
 *   forward:  y  = value(x)          (a subclass's; typically (w · xᵀ)ᵀ)
 *   backward: dx = dy · w            [N, out]·[out, in] — no gradient to the frozen weight
 * Only plain matMuls: wasm's matMul with transpose flags is 15–30× slower (FACTS.md), so the forward
 * transposes the small activations, never the big weight.
 * With the native addon active (src/backend/native-quant.ts), a subclass's `nativeForward` /
 * `nativeTransposed` multiply by the packed weight directly and no float W is made at all; they return
 * undefined elsewhere and the dequantize path above runs.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import type { Linear } from './linear.ts';
import { withGrad } from './custom-grad.ts';

export abstract class FrozenQuantLinear implements Linear {
  abstract readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly op: (x: tf.Tensor) => tf.Tensor;

  constructor(shape: readonly [number, number]) {
    [this.outFeatures, this.inFeatures] = shape;
    this.op = withGrad<[tf.Tensor]>(([x]) => ({
      value: this.forwardValue(x as tf.Tensor2D),
      gradFunc: (dy) => [this.applyTransposed(dy as tf.Tensor2D)],
    }));
  }

  /** The dequantized weight [out, in] as a new float32 tensor; the caller disposes it. */
  abstract weight(): tf.Tensor2D;
  abstract bytes(): number;

  /** The forward value for x [N, in] (no gradient bookkeeping: `apply` adds the input gradient). */
  protected forwardValue(x: tf.Tensor2D): tf.Tensor2D {
    return this.nativeForward(x) ?? this.withWeight((w) => matMulWT(x, w));
  }

  /** x · dequant(W)ᵀ from the packed weight by the native addon, or undefined where it is not active. */
  protected nativeForward(_x: tf.Tensor2D): tf.Tensor2D | undefined {
    return undefined;
  }

  /** dy · dequant(W) from the packed weight by the native addon, or undefined where it is not active. */
  protected nativeTransposed(_dy: tf.Tensor2D): tf.Tensor2D | undefined {
    return undefined;
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    checkInput(x, this.inFeatures, this.constructor.name);
    return this.op(x) as tf.Tensor2D;
  }

  /** dy [N, out] → dy · dequant(W) [N, in] (the input gradient; also used by a fused lm-head backward). No gradient. */
  applyTransposed(dy: tf.Tensor2D): tf.Tensor2D {
    checkInput(dy, this.outFeatures, `${this.constructor.name}.applyTransposed`);
    return this.nativeTransposed(dy) ?? this.withWeight((w) => tf.matMul(dy, w));
  }

  /** Runs f on a temporary dequantized weight [out, in], disposed afterwards. */
  protected withWeight(f: (w: tf.Tensor2D) => tf.Tensor2D): tf.Tensor2D {
    const w = this.weight();
    try {
      return f(w);
    } finally {
      w.dispose();
    }
  }

  trainableVariables(): tf.Variable[] {
    return [];
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
