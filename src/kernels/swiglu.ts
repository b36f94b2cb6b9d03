/**
 * SwiGLU on Phi-3's fused gate_up output: gu = [gate | up] (gate columns first), y = silu(gate) ⊙ up.
 *
 * With σ = sigmoid(gate), silu(g) = g·σ, silu'(g) = σ·(1 + g·(1 − σ)):
 *   dgate = dy ⊙ up ⊙ σ ⊙ (1 + gate ⊙ (1 − σ))
 *   dup   = dy ⊙ silu(gate)
 * Forward saves gate and up (the input, split); σ is recomputed in backward.
 */
import { tf } from '../backend/tf.ts';
import { withGrad } from './custom-grad.ts';

/** gu [N, 2I] → [N, I]. */
export function swiglu(gu: tf.Tensor2D): tf.Tensor2D {
  return swigluOp(gu) as tf.Tensor2D;
}

const swigluOp = withGrad<[tf.Tensor]>(([gu], save) => {
  const [gate, up] = tf.split(gu, 2, -1); // [N, I] each
  save([gate!, up!]);
  return {
    value: tf.mul(tf.mul(gate!, tf.sigmoid(gate!)), up!),
    gradFunc: (dy, [g, u]) => {
      const sig = tf.sigmoid(g!);
      const silu = tf.mul(g!, sig);
      const dsilu = tf.mul(sig, tf.add(1, tf.mul(g!, tf.sub(1, sig))));
      return [tf.concat([tf.mul(tf.mul(dy, u!), dsilu), tf.mul(dy, silu)], -1)];
    },
  };
});
