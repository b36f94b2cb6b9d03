/**
 * Rotary position embedding, split-half ("rotate_half") style as in HF Phi-3 / Llama:
 *   y = x ⊙ cos + rotate_half(x) ⊙ sin,  rotate_half([x1, x2]) = [−x2, x1]
 * with cos/sin = cos/sin(pos · θ^(−2i/hd)) for i < hd/2, repeated over both halves.
 *
 * We fold the sign into the table: sinS = [−sin, sin], swap([x1, x2]) = [x2, x1], so
 *   y  = x ⊙ cos + swap(x) ⊙ sinS
 *   dx = dy ⊙ cos + swap(dy ⊙ sinS)          (swap is its own transpose)
 * The tables are constants (closure), so the gradient goes to x only.
 */
import { tf } from '../backend/tf.ts';
import { withGrad } from './custom-grad.ts';

export interface RopeTables {
  /** [B, 1, T, hd] */
  cos: tf.Tensor4D;
  /** [B, 1, T, hd], first half negated. */
  sinS: tf.Tensor4D;
}

/**
 * Tables for per-row positions `positions` [B·T] (row-major [B, T]). Computed with float32 rounding
 * at each step, as transformers does in float32 (inv_freq, pos · inv_freq, cos).
 */
export function ropeTables(positions: Int32Array, B: number, T: number, hd: number, theta: number): RopeTables {
  const half = hd / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / hd))));
  const cos = new Float32Array(B * T * hd);
  const sinS = new Float32Array(B * T * hd);
  for (let r = 0; r < B * T; r++) {
    const p = positions[r]!;
    const o = r * hd;
    for (let i = 0; i < half; i++) {
      const f = Math.fround(p * invFreq[i]!);
      const c = Math.cos(f);
      const s = Math.sin(f);
      cos[o + i] = c;
      cos[o + half + i] = c;
      sinS[o + i] = -s;
      sinS[o + half + i] = s;
    }
  }
  return { cos: tf.tensor4d(cos, [B, 1, T, hd]), sinS: tf.tensor4d(sinS, [B, 1, T, hd]) };
}

/** [x1, x2] → [x2, x1] over the last axis. */
function swapHalves(x: tf.Tensor): tf.Tensor {
  const [x1, x2] = tf.split(x, 2, -1);
  return tf.concat([x2!, x1!], -1);
}

/** x [B, H, T, hd] → rotated [B, H, T, hd]. */
export function applyRope(x: tf.Tensor4D, t: RopeTables): tf.Tensor4D {
  const op = withGrad<[tf.Tensor]>(([xi], save) => {
    // The tables are per-call temporaries: save them so they outlive the caller's tidy until backward.
    save([t.cos, t.sinS]);
    return {
      value: tf.add(tf.mul(xi, t.cos), tf.mul(swapHalves(xi), t.sinS)),
      gradFunc: (dy, [cos, sinS]) => [tf.add(tf.mul(dy, cos!), swapHalves(tf.mul(dy, sinS!)))],
    };
  });
  return op(x) as tf.Tensor4D;
}
