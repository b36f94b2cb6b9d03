/**
 * Scaled dot-product attention with an additive mask and grouped-query heads.
 *
 *   s = (q·scale) kᵀ + bias     p = softmax(s)     o = p v
 * Backward (P̃ = p ⊙ keep/(1−rate) when attention dropout is on, else p):
 *   dv = P̃ᵀ do      dP̃ = do vᵀ      dp = dP̃ ⊙ keep/(1−rate)
 *   ds = p ⊙ (dp − Σ_S p ⊙ dp)      dq = ds k · scale      dk = dsᵀ q · scale
 *
 * GQA: H query heads share KV key/value heads, query head h reads kv head ⌊h / G⌋ (G = H / KV, HF's
 * repeat_kv). Rather than repeating k and v G times, q is viewed as [B, KV, G·T, hd]: the G heads
 * of a group become extra rows of one matmul, and dk, dv sum over the group for free.
 * On wasm's own kernels matmuls are plain (transpose flags are 15–30× slower there), with explicit
 * transposes; with the native matmul (src/backend/native.ts) the flags cost nothing and are used.
 *
 * Two implementations of the same math: 'batched' (rank-4 matMul) and 'grouped' (one 2-D matMul per
 * (batch row, kv head)). The wasm backend runs rank-3+ matMul through a naive loop (~1.5 GFLOP/s
 * here) but 2-D matMul through XNNPACK (~5–25 GFLOP/s), so 'grouped' is the default on wasm for
 * prompts (T ≥ 8) without the native matmul; 'batched' elsewhere, for single-token decoding steps,
 * and whenever the native matmul is on (B 4, H 8, T 256, hd 32, fwd+bwd: 27 ms with flags, 71 grouped).
 */
import { tf } from '../backend/tf.ts';
import { nativeMatmulActive } from '../backend/native.ts';
import { withGrad } from './custom-grad.ts';

/** A large negative bias: exp underflows to exactly 0, yet a fully masked row stays finite. */
export const MASKED = -1e9;

export interface AttentionOptions {
  /** Usually 1/√hd. */
  scale: number;
  /** Additive mask [B, 1, T, S]: 0 where a query may attend, MASKED where not. */
  bias: tf.Tensor4D;
  /** Attention dropout: a keep mask [B, H, T, S] of 0/1 and the rate it was drawn with. */
  dropout?: { keep: tf.Tensor4D; rate: number };
  /** Default: 'grouped' on wasm without the native matmul when T ≥ 8, else 'batched'. */
  impl?: 'batched' | 'grouped';
}

const T4 = [0, 1, 3, 2];

/** a·b with a and/or b transposed in their last two dims: transpose flags when they are free (native), else explicit transposes. */
function mm(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): tf.Tensor {
  if (nativeMatmulActive()) return tf.matMul(a, b, ta, tb);
  return tf.matMul(ta ? tf.transpose(a, T4) : a, tb ? tf.transpose(b, T4) : b);
}

/** q [B, H, T, hd], k, v [B, KV, S, hd] → o [B, H, T, hd]. */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttentionOptions): tf.Tensor4D {
  const [B, H, T, hd] = q.shape;
  const KV = k.shape[1];
  const S = k.shape[2];
  if (H % KV !== 0 || v.shape[1] !== KV || v.shape[2] !== S || k.shape[3] !== hd) {
    throw new RangeError(`attention: q ${q.shape}, k ${k.shape}, v ${v.shape} do not fit (heads must be a multiple of kv heads)`);
  }
  const impl = opts.impl ?? (tf.getBackend() === 'wasm' && T >= 8 && !nativeMatmulActive() ? 'grouped' : 'batched');
  if (impl === 'grouped') return attentionGrouped(q, k, v, opts);
  const GT = (H / KV) * T;
  const { scale, bias, dropout } = opts;
  const dropScale = dropout !== undefined ? 1 / (1 - dropout.rate) : 1;
  const op = withGrad<[tf.Tensor, tf.Tensor, tf.Tensor]>(([qi, ki, vi], save) => {
    const q5 = tf.reshape(qi, [B, KV, GT, hd]);
    const s = tf.add(tf.reshape(mm(tf.mul(q5, scale), ki, false, true), [B, H, T, S]), bias); // [B, H, T, S]
    const p = tf.softmax(s);
    const pd = dropout !== undefined ? tf.mul(p, tf.mul(dropout.keep, dropScale)) : p;
    const o = tf.matMul(tf.reshape(pd, [B, KV, GT, S]), vi); // [B, KV, G·T, hd]
    // The dropout mask is a per-call temporary: saved so it outlives the caller's tidy.
    save(dropout !== undefined ? [q5, ki, vi, p, dropout.keep] : [q5, ki, vi, p]);
    return {
      value: tf.reshape(o, [B, H, T, hd]),
      gradFunc: (dy, [qs, ks, vs, ps, keep]) => {
        const do5 = tf.reshape(dy, [B, KV, GT, hd]);
        const keepScaled = keep !== undefined ? tf.mul(keep, dropScale) : undefined;
        const pdS = keepScaled !== undefined ? tf.mul(ps!, keepScaled) : ps!;
        const dv = mm(tf.reshape(pdS, [B, KV, GT, S]), do5, true, false); // [B, KV, S, hd]
        let dp = tf.reshape(mm(do5, vs!, false, true), [B, H, T, S]);
        if (keepScaled !== undefined) dp = tf.mul(dp, keepScaled);
        const ds = tf.mul(ps!, tf.sub(dp, tf.sum(tf.mul(ps!, dp), -1, true))); // [B, H, T, S]
        const ds5 = tf.mul(tf.reshape(ds, [B, KV, GT, S]), scale);
        const dq = tf.reshape(tf.matMul(ds5, ks!), [B, H, T, hd]);
        const dk = mm(ds5, qs!, true, false); // [B, KV, S, hd]
        return [dq, dk, dv];
      },
    };
  });
  return op(q, k, v) as tf.Tensor4D;
}

/**
 * x [n, ...rest] → n tensors [...rest]. One read of x, then one small tensor a piece: on wasm every
 * tf.slice/split/unstack copies the WHOLE input first (readSync), so n slices cost n full copies.
 */
function unstack0(x: tf.Tensor): tf.Tensor[] {
  const n = x.shape[0]!;
  const rest = x.shape.slice(1);
  const size = x.size / n;
  const d = x.dataSync() as Float32Array;
  return Array.from({ length: n }, (_, i) => tf.tensor(d.subarray(i * size, (i + 1) * size), rest));
}

/** The same attention, as 2-D matmuls per (batch row, kv head) group of G·T query rows. */
function attentionGrouped(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttentionOptions): tf.Tensor4D {
  const [B, H, T, hd] = q.shape;
  const KV = k.shape[1];
  const S = k.shape[2];
  const G = H / KV;
  const n = B * KV;
  const { scale, bias, dropout } = opts;
  const dropScale = dropout !== undefined ? 1 / (1 - dropout.rate) : 1;
  const op = withGrad<[tf.Tensor, tf.Tensor, tf.Tensor]>(([qi, ki, vi], save) => {
    const qs = unstack0(tf.reshape(qi, [n, G * T, hd])); // n × [G·T, hd]
    const ks = unstack0(tf.reshape(ki, [n, S, hd])); // n × [S, hd]
    const vs = unstack0(tf.reshape(vi, [n, S, hd]));
    const biases = unstack0(tf.reshape(bias, [B, T, S])); // B × [T, S]
    const keeps = dropout !== undefined ? unstack0(tf.mul(tf.reshape(dropout.keep, [n, G * T, S]), dropScale)) : [];
    const ps: tf.Tensor[] = [];
    const os: tf.Tensor[] = [];
    for (let i = 0; i < n; i++) {
      const s = tf.matMul(tf.mul(qs[i]!, scale) as tf.Tensor2D, tf.transpose(ks[i]!) as tf.Tensor2D); // [G·T, S]
      const p = tf.softmax(tf.reshape(tf.add(tf.reshape(s, [G, T, S]), biases[Math.floor(i / KV)]!), [G * T, S]));
      ps.push(p);
      const pd = dropout !== undefined ? tf.mul(p, keeps[i]!) : p;
      os.push(tf.matMul(pd as tf.Tensor2D, vs[i]! as tf.Tensor2D)); // [G·T, hd]
    }
    save([...qs, ...ks, ...vs, ...ps, ...keeps]);
    return {
      value: tf.reshape(tf.stack(os), [B, H, T, hd]),
      gradFunc: (dy, saved) => {
        const [sq, sk, sv, sp] = [0, 1, 2, 3].map((j) => saved.slice(j * n, (j + 1) * n));
        const sKeep = saved.slice(4 * n);
        const dos = unstack0(tf.reshape(dy, [n, G * T, hd]));
        const dq: tf.Tensor[] = [];
        const dk: tf.Tensor[] = [];
        const dv: tf.Tensor[] = [];
        for (let i = 0; i < n; i++) {
          const p = sp[i]! as tf.Tensor2D;
          const keep = sKeep[i];
          const pd = keep !== undefined ? tf.mul(p, keep) : p;
          dv.push(tf.matMul(tf.transpose(pd) as tf.Tensor2D, dos[i]! as tf.Tensor2D)); // [S, hd]
          let dp = tf.matMul(dos[i]! as tf.Tensor2D, tf.transpose(sv[i]!) as tf.Tensor2D); // [G·T, S]
          if (keep !== undefined) dp = tf.mul(dp, keep);
          const ds = tf.mul(tf.mul(p, tf.sub(dp, tf.sum(tf.mul(p, dp), -1, true))), scale) as tf.Tensor2D;
          dq.push(tf.matMul(ds, sk[i]! as tf.Tensor2D)); // [G·T, hd]
          dk.push(tf.matMul(tf.transpose(ds) as tf.Tensor2D, sq[i]! as tf.Tensor2D)); // [S, hd]
        }
        return [
          tf.reshape(tf.stack(dq), [B, H, T, hd]),
          tf.reshape(tf.stack(dk), [B, KV, S, hd]),
          tf.reshape(tf.stack(dv), [B, KV, S, hd]),
        ];
      },
    };
  });
  return op(q, k, v) as tf.Tensor4D;
}
