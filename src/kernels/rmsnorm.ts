/**
 * RMSNorm (Phi3RMSNorm): y = w ⊙ x ⊙ rstd, rstd = (mean(x²) + eps)^-½, over the last axis.
 *
 * Backward (g = dy ⊙ w):
 *   dx = rstd ⊙ g − x ⊙ rstd³ ⊙ mean(g ⊙ x)
 *   dw = Σ_rows dy ⊙ x ⊙ rstd            (only when w is a trainable variable)
 * Forward saves x and rstd, as llm.c's layernorm_forward caches mean and rstd.
 */
import { tf } from '../backend/tf.ts';
import { withGrad } from './custom-grad.ts';

/** x [N, D], w [D] → [N, D]. */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  const D = x.shape[1];
  const forward = (xi: tf.Tensor, wi: tf.Tensor) => {
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps)); // [N, 1]
    return { rstd, y: tf.mul(tf.mul(xi, rstd), wi) };
  };
  // dx given g = dy ⊙ w.
  const dxOf = (g: tf.Tensor, xs: tf.Tensor, rstd: tf.Tensor) => {
    const gx = tf.div(tf.sum(tf.mul(g, xs), -1, true), D); // mean(g ⊙ x) [N, 1]
    return tf.sub(tf.mul(g, rstd), tf.mul(xs, tf.mul(tf.pow(rstd, 3), gx)));
  };
  if (isTrainable(w)) {
    const op = withGrad<[tf.Tensor, tf.Tensor]>(([xi, wi], save) => {
      const { rstd, y } = forward(xi, wi);
      save([xi, wi, rstd]);
      return {
        value: y,
        gradFunc: (dy, [xs, ws, r]) => [
          dxOf(tf.mul(dy, ws!), xs!, r!),
          tf.sum(tf.mul(dy, tf.mul(xs!, r!)), 0),
        ],
      };
    });
    return op(x, w) as tf.Tensor2D;
  }
  // Frozen weight: keep it in the closure, so no gradient is computed for it.
  const op = withGrad<[tf.Tensor]>(([xi], save) => {
    const { rstd, y } = forward(xi, w);
    save([xi, rstd]);
    return { value: y, gradFunc: (dy, [xs, r]) => [dxOf(tf.mul(dy, w), xs!, r!)] };
  });
  return op(x) as tf.Tensor2D;
}

/** A variable the optimizer updates must be a customGrad input to receive a gradient. */
function isTrainable(t: tf.Tensor): boolean {
  return t instanceof tf.Variable && t.trainable;
}
