/**
 * Fused lm_head + log-softmax + NLL over the vocabulary, in row chunks, so that the logits of all
 * rows [n, V] (V = 32064) never exist at once — not in the forward, and not saved for the backward.
 *
 *   logits = h Wᵀ (per chunk)   lse = log Σ_v exp(logits)   nll_i = lse_i − logits[i, t_i]
 *   loss = Σ_i w_i nll_i / Σ_i w_i        (w = 1: the mean over target rows)
 * Backward, recomputing each chunk's logits (only lse [n] is saved):
 *   dlogits = (softmax(logits) − onehot(t)) ⊙ w_i / Σw · dy
 *   dh = dlogits W          dWᵀ = hᵀ dlogits   (only when W is a trainable variable)
 *
 * The head is a `Linear`. A `FloatLinear` is used through its Wᵀ [D, V] tensor directly. A frozen
 * quantized head runs its own `apply` forward; its backward uses `applyTransposed` when the layer
 * has one (dy W without dequantizing), else its dequantized `weight()` once per backward. A head of
 * another kind with trainable variables (e.g. LoRA on lm_head) takes the unfused path: per-chunk
 * logits through autograd and `crossEntropyFromLogits` — correct, but logits stay on the tape.
 * With the native addon active, a frozen FloatLinear head takes `nativeFused` instead: one fused
 * kernel (src/backend/native-ce.ts) makes the loss and, under a gradient scope, dh in the forward.
 */
import { tf } from '../backend/tf.ts';
import { nativeLinearCrossEntropy } from '../backend/native-ce.ts';
import { nativeMatmulActive } from '../backend/native.ts';
import { recordingGradients, withGrad } from './custom-grad.ts';
import { FloatLinear } from './float-linear.ts';
import type { Linear } from './linear.ts';

/** A linear that can also multiply by W (not Wᵀ): dy [N, out] → [N, in]. Optional for quantized heads. */
export interface LinearWithTranspose extends Linear {
  applyTransposed(dy: tf.Tensor2D): tf.Tensor2D;
}

export interface CrossEntropyOptions {
  /** Rows per chunk (default: about 8M logits a chunk, at least 16 rows). */
  chunkRows?: number;
  /** Per-row weights [n] (default all 1): loss = Σ w·nll / Σ w. */
  weights?: Float32Array;
}

function defaultChunk(V: number): number {
  return Math.max(16, Math.floor((1 << 23) / V));
}

function checkTargets(targets: Int32Array, n: number, V: number): void {
  if (targets.length !== n) throw new RangeError(`cross-entropy: ${targets.length} targets for ${n} rows`);
  for (let i = 0; i < n; i++) {
    const t = targets[i]!;
    if (!(t >= 0 && t < V)) throw new RangeError(`cross-entropy: target ${t} at row ${i} is outside [0, ${V})`);
  }
}

function rowWeights(n: number, w?: Float32Array): { w: Float32Array; total: number } {
  const out = w ?? new Float32Array(n).fill(1);
  if (out.length !== n) throw new RangeError(`cross-entropy: ${out.length} weights for ${n} rows`);
  let total = 0;
  for (let i = 0; i < n; i++) total += out[i]!;
  if (!(total > 0)) throw new RangeError('cross-entropy: the weights sum to zero (no target rows)');
  return { w: out, total };
}

/** lse [c] and nll [c] of one chunk of logits [c, V] with targets. */
function lseAndNll(logits: tf.Tensor2D, t: Int32Array): { lse: tf.Tensor1D; nll: tf.Tensor1D } {
  const [c, V] = logits.shape;
  const m = tf.max(logits, -1, true); // [c, 1]
  const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(logits, m)), -1, true))).reshape([c]) as tf.Tensor1D;
  const flat = new Int32Array(c);
  for (let i = 0; i < c; i++) flat[i] = i * V + t[i]!;
  const picked = tf.gather(tf.reshape(logits, [c * V]), tf.tensor1d(flat, 'int32')); // [c]
  return { lse, nll: tf.sub(lse, picked) };
}

/** (softmax − onehot) ⊙ scale, from recomputed logits and saved lse. [c, V] */
function dLogits(logits: tf.Tensor2D, lse: tf.Tensor, t: Int32Array, scale: tf.Tensor): tf.Tensor2D {
  const [c, V] = logits.shape;
  const p = tf.exp(tf.sub(logits, tf.reshape(lse, [c, 1])));
  // Not tf.oneHot(..., 'float32'): the wasm backend's OneHot writes int bits into a float tensor.
  const at = new Int32Array(2 * c);
  for (let i = 0; i < c; i++) {
    at[2 * i] = i;
    at[2 * i + 1] = t[i]!;
  }
  const onehot = tf.scatterND(tf.tensor2d(at, [c, 2], 'int32'), tf.ones([c]), [c, V]);
  return tf.mul(tf.sub(p, onehot), tf.reshape(scale, [c, 1])) as tf.Tensor2D;
}

/** Mean (or weighted) cross-entropy of h [n, D] through `head` [V, D] against targets [n]. */
export function linearCrossEntropy(h: tf.Tensor2D, head: Linear, targets: Int32Array, opts: CrossEntropyOptions = {}): tf.Scalar {
  const [n, D] = h.shape;
  const V = head.outFeatures;
  if (head.inFeatures !== D) throw new RangeError(`cross-entropy: h has ${D} columns, the head takes ${head.inFeatures}`);
  checkTargets(targets, n, V);
  const { w, total } = rowWeights(n, opts.weights);
  const chunk = opts.chunkRows ?? defaultChunk(V);

  if (!(head instanceof FloatLinear) && head.trainableVariables().length > 0) {
    return unfused(h, head, targets, w, total, chunk);
  }
  const wt = head instanceof FloatLinear ? head.wt : undefined; // [D, V]
  const trainW = wt !== undefined && wt.trainable;
  if (wt !== undefined && !trainW && nativeMatmulActive()) return nativeFused(h, wt, targets, w, total);
  const logitsOf = (hc: tf.Tensor2D): tf.Tensor2D => (wt !== undefined ? tf.matMul(hc, wt) : head.apply(hc)); // [c, V]
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < n; s += chunk) chunks.push([s, Math.min(n, s + chunk)]);

  const body = (hi: tf.Tensor, save: tf.GradSaveFunc) => {
    let loss: tf.Tensor = tf.scalar(0);
    const lses: tf.Tensor[] = [];
    for (const [s, e] of chunks) {
      const [part, lse] = tf.tidy(() => {
        const r = lseAndNll(logitsOf(tf.slice(hi, [s, 0], [e - s, D]) as tf.Tensor2D), targets.subarray(s, e));
        return [tf.sum(tf.mul(r.nll, tf.tensor1d(w.subarray(s, e)))), r.lse];
      });
      const next = tf.add(loss, part!);
      loss.dispose();
      part!.dispose();
      loss = next;
      lses.push(lse!);
    }
    const lseAll = tf.concat(lses); // [n]
    save([hi, lseAll]);
    return { loss: tf.div(loss, total), lseAll };
  };

  // Backward over chunks: returns dh [n, D] and, when asked, dWᵀ [D, V].
  const backward = (dy: tf.Tensor, hs: tf.Tensor, lseAll: tf.Tensor, wantW: boolean): [tf.Tensor, tf.Tensor | undefined] => {
    const lin = head as Partial<LinearWithTranspose>;
    const wFull = wt !== undefined ? tf.transpose(wt) : lin.applyTransposed === undefined ? head.weight() : undefined; // [V, D]
    const backX = (dl: tf.Tensor2D) => (wFull !== undefined ? tf.matMul(dl, wFull as tf.Tensor2D) : lin.applyTransposed!(dl));
    const dhs: tf.Tensor[] = [];
    let dwt: tf.Tensor | undefined;
    for (const [s, e] of chunks) {
      const [dh, dwPart] = tf.tidy(() => {
        const hc = tf.slice(hs, [s, 0], [e - s, D]) as tf.Tensor2D;
        const scale = tf.mul(tf.tensor1d(w.subarray(s, e)), tf.div(dy, total));
        const dl = dLogits(logitsOf(hc), tf.slice(lseAll, [s], [e - s]), targets.subarray(s, e), scale);
        return wantW ? [backX(dl), tf.matMul(tf.transpose(hc), dl)] : [backX(dl)];
      });
      dhs.push(dh!);
      if (dwPart !== undefined) {
        const next = dwt === undefined ? dwPart : tf.add(dwt, dwPart);
        if (dwt !== undefined) {
          dwt.dispose();
          dwPart.dispose();
        }
        dwt = next;
      }
    }
    wFull?.dispose();
    return [tf.concat(dhs), dwt];
  };

  if (trainW) {
    const op = withGrad<[tf.Tensor, tf.Tensor]>(([hi], save) => {
      const { loss } = body(hi, save);
      return {
        value: loss,
        gradFunc: (dy, [hs, lseAll]) => {
          const [dh, dwt] = backward(dy, hs!, lseAll!, true);
          return [dh, dwt!];
        },
      };
    });
    return op(h, wt!) as tf.Scalar;
  }
  const op = withGrad<[tf.Tensor]>(([hi], save) => {
    const { loss } = body(hi, save);
    return { value: loss, gradFunc: (dy, [hs, lseAll]) => [backward(dy, hs!, lseAll!, false)[0]] };
  });
  return op(h) as tf.Scalar;
}

/**
 * The native path (src/backend/native-ce.ts) for a frozen float head: one addon call makes the loss
 * and, when gradients are being recorded, dh for dy = 1, which the backward only scales.
 */
function nativeFused(h: tf.Tensor2D, wt: tf.Tensor2D, targets: Int32Array, w: Float32Array, total: number): tf.Scalar {
  const grad = recordingGradients();
  const op = withGrad<[tf.Tensor]>(([hi], save) => {
    const r = nativeLinearCrossEntropy(hi as tf.Tensor2D, wt, targets, w, 1 / total, grad)!;
    const loss = tf.tidy(() => tf.div(tf.sum(tf.mul(r.nll, tf.tensor1d(w))), total));
    r.nll.dispose();
    save(r.dh !== undefined ? [r.dh] : []);
    return {
      value: loss,
      gradFunc: (dy, [dh]) => {
        if (dh === undefined) throw new Error('cross-entropy: a gradient was asked of a loss computed outside tf.grads/variableGrads');
        return [tf.mul(dh, dy)];
      },
    };
  });
  return op(h) as tf.Scalar;
}

function unfused(h: tf.Tensor2D, head: Linear, targets: Int32Array, w: Float32Array, total: number, chunk: number): tf.Scalar {
  const n = h.shape[0];
  const D = h.shape[1];
  let loss: tf.Tensor = tf.scalar(0);
  for (let s = 0; s < n; s += chunk) {
    const e = Math.min(n, s + chunk);
    const part = tf.tidy(() => {
      const logits = head.apply(tf.slice(h, [s, 0], [e - s, D]) as tf.Tensor2D);
      const ww = w.subarray(s, e);
      let sw = 0;
      for (const x of ww) sw += x;
      return tf.mul(crossEntropyFromLogits(logits, targets.subarray(s, e), { weights: ww }), sw);
    });
    const next = tf.add(loss, part);
    loss.dispose();
    part.dispose();
    loss = next;
  }
  const out = tf.div(loss, total) as tf.Scalar;
  loss.dispose();
  return out;
}

/**
 * Cross-entropy from materialised logits [n, V] (the unfused reference and the "all positions" path):
 * Σ w·nll / Σ w, gradient (softmax − onehot) ⊙ w / Σw to the logits.
 */
export function crossEntropyFromLogits(logits: tf.Tensor2D, targets: Int32Array, opts: { weights?: Float32Array } = {}): tf.Scalar {
  const [n, V] = logits.shape;
  checkTargets(targets, n, V);
  const { w, total } = rowWeights(n, opts.weights);
  const op = withGrad<[tf.Tensor]>(([li], save) => {
    const { lse, nll } = lseAndNll(li as tf.Tensor2D, targets);
    save([li, lse]);
    return {
      value: tf.div(tf.sum(tf.mul(nll, tf.tensor1d(w))), total),
      gradFunc: (dy, [ls, lses]) => [dLogits(ls as tf.Tensor2D, lses!, targets, tf.mul(tf.tensor1d(w), tf.div(dy, total)))],
    };
  });
  return op(logits) as tf.Scalar;
}
