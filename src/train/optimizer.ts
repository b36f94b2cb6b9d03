/**
 * AdamW with decoupled weight decay, written out over tf.Variables so that its whole state (step,
 * m, v) is plain tensors we can save to safetensors and restore bit for bit. PyTorch's update
 * (torch.optim.AdamW, amsgrad off), for each parameter p with gradient g at step t = 1, 2, …:
 *   p ← p · (1 − lr·λ)
 *   m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 * Bias corrections are computed in float64 in JS, the rest in float32 on the backend.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import { openSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { rawFromTyped, toFloat32 } from '../io/tensor.ts';

export interface AdamWConfig {
  betas?: [number, number];
  eps?: number;
  /** λ (PyTorch default 0.01). */
  weightDecay?: number;
  /** Names that get no weight decay (e.g. norms when pretraining). */
  noDecay?: (name: string) => boolean;
}

/** A trainable variable with a stable name (checkpoint key; tf's own names differ between runs). */
export type NamedVariable = readonly [string, tf.Variable];

export class AdamW {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** Updates done so far. */
  step = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private readonly decay: boolean[];

  constructor(readonly params: readonly NamedVariable[], config: AdamWConfig = {}) {
    this.betas = config.betas ?? [0.9, 0.999];
    this.eps = config.eps ?? 1e-8;
    this.weightDecay = config.weightDecay ?? 0.01;
    const names = new Set<string>();
    for (const [n] of params) {
      if (names.has(n)) throw new CliniloraError('E_ARG', 'two trainable variables share a name', { field: n });
      names.add(n);
    }
    // State exists from the start (zeros), so the tensor count does not change after step 1.
    const zeros = (p: tf.Variable): tf.Variable => {
      const z = tf.zerosLike(p);
      const v = tf.variable(z, false);
      z.dispose();
      return v;
    };
    this.m = params.map(([, p]) => zeros(p));
    this.v = params.map(([, p]) => zeros(p));
    this.decay = params.map(([n]) => !(config.noDecay?.(n) ?? false));
  }

  /** One update with gradients aligned with `params`. */
  apply(grads: readonly tf.Tensor[], lr: number): void {
    if (grads.length !== this.params.length) {
      throw new CliniloraError('E_ARG', 'one gradient per parameter', { field: 'grads', expected: String(this.params.length), found: String(grads.length) });
    }
    this.step += 1;
    const [b1, b2] = this.betas;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    tf.tidy(() => {
      this.params.forEach(([, p], i) => {
        const g = grads[i]!;
        const m = tf.add(tf.mul(this.m[i]!, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i]!, b2), tf.mul(tf.square(g), 1 - b2));
        const decayed = this.decay[i] && this.weightDecay !== 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), this.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
      });
    });
  }

  /** Writes step, m and v (`m.<name>`, `v.<name>`, F32) to a safetensors file. */
  save(path: string): void {
    const tensors: Array<[string, ReturnType<typeof rawFromTyped>]> = [];
    this.params.forEach(([name, p], i) => {
      tensors.push([`m.${name}`, rawFromTyped(new Float32Array(this.m[i]!.dataSync()), p.shape)]);
      tensors.push([`v.${name}`, rawFromTyped(new Float32Array(this.v[i]!.dataSync()), p.shape)]);
    });
    writeSafetensors(path, tensors, { format: 'clinilora-adamw', step: String(this.step), betas: JSON.stringify(this.betas), eps: String(this.eps), weight_decay: String(this.weightDecay) });
  }

  /** Restores step, m and v; every missing or misshapen tensor is listed in one error, nothing changes. */
  load(path: string): void {
    const f = openSafetensors(path);
    try {
      const problems: string[] = [];
      const loaded: Float32Array[][] = [];
      for (const [name, p] of this.params) {
        const pair: Float32Array[] = [];
        for (const k of [`m.${name}`, `v.${name}`]) {
          if (!f.has(k)) { problems.push(`${k}: missing`); continue; }
          const info = f.info(k);
          if (info.dtype !== 'F32' || info.shape.join(',') !== p.shape.join(',')) {
            problems.push(`${k}: expected F32 [${p.shape.join(', ')}], found ${info.dtype} [${info.shape.join(', ')}]`);
            continue;
          }
          pair.push(toFloat32(f.read(k)));
        }
        loaded.push(pair);
      }
      const step = Number(f.metadata['step']);
      if (!Number.isInteger(step) || step < 0) problems.push(`metadata step: expected an integer, found ${JSON.stringify(f.metadata['step'])}`);
      if (problems.length > 0) {
        throw new CliniloraError('E_FORMAT', `optimizer state does not fit the trainable variables:\n  ${problems.join('\n  ')}`, { file: path, field: 'optimizer' });
      }
      this.params.forEach(([, p], i) => {
        const [m, v] = loaded[i]!;
        tf.tidy(() => {
          this.m[i]!.assign(tf.tensor(m!, p.shape));
          this.v[i]!.assign(tf.tensor(v!, p.shape));
        });
      });
      this.step = step;
    } finally {
      f.close();
    }
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/**
 * Global-norm clipping (torch.nn.utils.clip_grad_norm_): norm = √Σ‖g‖²; when maxNorm > 0 and the
 * norm exceeds it, every gradient is scaled by maxNorm / (norm + 1e-6). Returns the PRE-clip norm and
 * the gradients to use (new tensors when scaled; the inputs are then disposed).
 */
export function clipGradNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const sq = tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt(sq.dataSync()[0]!);
  sq.dispose();
  if (!(maxNorm > 0) || !(norm > maxNorm)) return { grads, norm };
  const coef = maxNorm / (norm + 1e-6);
  const scaled = grads.map((g) => tf.mul(g, coef));
  for (const g of grads) g.dispose();
  return { grads: scaled, norm };
}
