/**
 * Next-token loss with a label mask. labelsMask[b][t] = 1 makes token t a target, predicted from
 * the hidden state at t − 1 (HF's shift: logits[:, :-1] against labels[:, 1:]); prompt and padding
 * tokens get 0, and labelsMask[b][0] can never be a target.
 *
 * By default the lm_head runs only at target rows (the fused, chunked cross-entropy), which roughly
 * doubles LoRA throughput when answers are short (FACTS.md); `logitsAt: 'all'` computes every
 * position's logits first, as the plain reference does.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import type { Rng } from '../util/random.ts';
import { gatherRows } from '../kernels/embedding.ts';
import { linearCrossEntropy, crossEntropyFromLogits } from '../kernels/cross-entropy.ts';
import { toFlat, expectShape, type TokenBatch } from './batch.ts';
import type { Phi3ForCausalLM } from './phi3.ts';

export interface LossOptions {
  /** [B, T] 1/0 (right padding). Default: all ones. */
  attentionMask?: TokenBatch;
  training?: boolean;
  rng?: Rng;
  /** 'targets' (default): lm_head only at target rows. 'all': logits at every position first. */
  logitsAt?: 'targets' | 'all';
  /** Rows per lm_head chunk in the fused cross-entropy. */
  chunkRows?: number;
  /** Per-token weights [B·T] aligned with labelsMask (default 1): loss = Σ w·nll / Σ w. */
  labelWeights?: Float32Array;
  /** Recompute each decoder layer in the backward (ForwardOptions.gradientCheckpointing). */
  gradientCheckpointing?: boolean;
}

export interface Targets {
  /** Row b·T + t − 1 of the hidden states, for each target token (b, t). */
  rows: Int32Array;
  /** The target token ids. */
  targets: Int32Array;
  weights?: Float32Array;
}

/** Target rows and ids from the label mask. */
export function targetsFromMask(ids: Int32Array, labels: Int32Array, B: number, T: number, opts: { attentionMask?: Int32Array; labelWeights?: Float32Array } = {}): Targets {
  const rows: number[] = [];
  const targets: number[] = [];
  const weights: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < T; t++) {
      const i = b * T + t;
      if (labels[i] === 0) continue;
      if (opts.attentionMask !== undefined && (opts.attentionMask[i] === 0 || opts.attentionMask[i - 1] === 0)) {
        throw new CliniloraError('E_ARG', `token [${b}, ${t}] is a target but it or the token before it is padding`, {
          field: 'labelsMask',
          expected: '0 wherever attentionMask is 0',
          found: '1',
        });
      }
      rows.push(i - 1);
      targets.push(ids[i]!);
      weights.push(opts.labelWeights?.[i] ?? 1);
    }
  }
  return {
    rows: Int32Array.from(rows),
    targets: Int32Array.from(targets),
    weights: opts.labelWeights !== undefined ? Float32Array.from(weights) : undefined,
  };
}

export function lossFromIds(model: Phi3ForCausalLM, inputIds: TokenBatch, labelsMask: TokenBatch, opts: LossOptions = {}): tf.Scalar {
  const ids = toFlat(inputIds, 'inputIds');
  const { B, T } = ids;
  const labels = toFlat(labelsMask, 'labelsMask');
  expectShape(labels, B, T, 'labelsMask');
  const mask = opts.attentionMask !== undefined ? toFlat(opts.attentionMask, 'attentionMask') : undefined;
  if (mask !== undefined) expectShape(mask, B, T, 'attentionMask');
  if (opts.labelWeights !== undefined && opts.labelWeights.length !== B * T) {
    throw new CliniloraError('E_SHAPE', 'labelWeights must have one weight per token', { field: 'labelWeights', expected: `${B * T}`, found: `${opts.labelWeights.length}` });
  }
  const tg = targetsFromMask(ids.data, labels.data, B, T, { attentionMask: mask?.data, labelWeights: opts.labelWeights });
  if (tg.rows.length === 0) {
    throw new CliniloraError('E_ARG', 'no target tokens in the batch', { field: 'labelsMask', expected: 'at least one 1 after position 0', found: 'none' });
  }
  const input = { data: ids.data, shape: [B, T] as [number, number] };
  return tf.tidy(() => {
    const { hidden } = model.hiddenStates(input, {
      attentionMask: opts.attentionMask,
      training: opts.training,
      rng: opts.rng,
      gradientCheckpointing: opts.gradientCheckpointing,
    }); // [B·T, D]
    if (opts.logitsAt === 'all') {
      const logits = model.lmHead.apply(model.norm.forward(hidden)); // [B·T, V]
      return crossEntropyFromLogits(gatherRows(logits, tg.rows), tg.targets, { weights: tg.weights });
    }
    const h = model.norm.forward(gatherRows(hidden, tg.rows)); // [n, D]
    return linearCrossEntropy(h, model.lmHead, tg.targets, { chunkRows: opts.chunkRows, weights: tg.weights });
  });
}
