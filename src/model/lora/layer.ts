/**
 * A LoRA adapter wrapped around any `Linear` base — float, int8 or NF4 ("wrap the base layer, don't
 * rewrite it"), PEFT's `LoraLayer`:
 *
 *   y = base(x) + dropout(x) · Aᵀ · Bᵀ · scaling        A [r, in], B [out, r], both trainable
 *
 * Init (PEFT `reset_lora_parameters`, init_lora_weights=True): B = 0, and A kaiming-uniform with
 * a = √5: gain = √(2 / (1 + a²)) = √(1/3), std = gain / √fan_in, bound = √3 · std = 1 / √fan_in with
 * fan_in = in (A's second dimension), so A ~ U(−1/√in, 1/√in).
 *
 * The adapter branch is one custom-gradient op taking x, A and B as inputs (so tf.variableGrads sees A
 * and B), with explicit transposes (wasm's transpose-flag matMul is 15–30× slower):
 *   h = x · Aᵀ [N, r]     y = h · Bᵀ · s [N, out]
 *   g = dy · s            dh = g · B [N, r]
 *   dx = dh · A [N, in]   dA = dhᵀ · x [r, in]   dB = gᵀ · h [out, r]
 */
import { tf } from '../../backend/tf.ts';
import { CliniloraError } from '../../errors.ts';
import type { Linear } from '../../kernels/linear.ts';
import { withGrad } from '../../kernels/custom-grad.ts';
import { FloatLinear } from '../../kernels/float-linear.ts';
import { Int8Linear } from '../../kernels/int8-linear.ts';
import { NF4Linear } from '../../kernels/nf4-linear.ts';
import { checkInput } from '../../kernels/frozen-linear.ts';
import { Rng, type RngState } from '../../util/random.ts';

export interface LoraLayerOptions {
  r: number;
  loraAlpha: number;
  loraDropout?: number;
  useRslora?: boolean;
  /** true (default): B = 0; false: B kaiming-uniform too (bound 1/√r); 'gaussian': A ~ N(0, 1/r), B = 0. */
  initLoraWeights?: boolean | string;
  /** Seeds the init (split 'init') and the dropout masks (split 'dropout'). */
  rng: Rng;
  /** Module name, for errors and variable names. */
  name?: string;
}

export interface MergeOptions {
  /** Receives warnings (already merged, rounding into a quantized base). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
}

const defaultWarn = (m: string): void => process.emitWarning(m, { code: 'CLINILORA_LORA' });

/** y = x · Aᵀ · Bᵀ · scaling as one op with a transpose-free gradient for x, A and B. */
export function makeLoraDelta(scaling: number): (x: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  return withGrad<[tf.Tensor, tf.Tensor, tf.Tensor]>(([x, a, b], save) => {
    const h = tf.matMul(x as tf.Tensor2D, tf.transpose(a as tf.Tensor2D)); // [N, r]
    const value = tf.mul(tf.matMul(h, tf.transpose(b as tf.Tensor2D)), scaling); // [N, out]
    save([x, a, b, h]);
    return {
      value,
      gradFunc: (dy, [sx, sa, sb, sh]) => {
        const g = tf.mul(dy, scaling) as tf.Tensor2D; // [N, out]
        const dh = tf.matMul(g, sb as tf.Tensor2D); // [N, r]
        return [
          tf.matMul(dh, sa as tf.Tensor2D), // dx [N, in]
          tf.matMul(tf.transpose(dh), sx as tf.Tensor2D), // dA [r, in]
          tf.matMul(tf.transpose(g), sh as tf.Tensor2D), // dB [out, r]
        ];
      },
    };
  });
}

/** Builds a frozen base of the same kind and settings from a float [out, in] weight; first match wins. */
interface BaseDispatcher {
  kind: string;
  rebuild(base: Linear, w: Float32Array): Linear | undefined;
}

const DISPATCHERS: readonly BaseDispatcher[] = [
  {
    kind: 'nf4 (NF4Linear)',
    rebuild: (b, w) => (b instanceof NF4Linear ? NF4Linear.fromFloat(w, b.outFeatures, b.inFeatures, { doubleQuant: b.doubleQuant, blockSize: b.q.blockSize }) : undefined),
  },
  {
    kind: 'int8 (Int8Linear)',
    rebuild: (b, w) => (b instanceof Int8Linear ? Int8Linear.fromFloat(w, b.outFeatures, b.inFeatures, { threshold: b.threshold }) : undefined),
  },
  {
    kind: 'float (FloatLinear)',
    rebuild: (b, w) => (b instanceof FloatLinear ? new FloatLinear(w, b.outFeatures, b.inFeatures) : undefined),
  },
];

function rebuildBase(base: Linear, w: Float32Array, name: string): Linear {
  for (const d of DISPATCHERS) {
    const layer = d.rebuild(base, w);
    if (layer !== undefined) return layer;
  }
  throw new CliniloraError('E_UNSUPPORTED', `cannot merge a LoRA adapter into a base layer of kind '${base.kind}'`, {
    field: name,
    expected: DISPATCHERS.map((d) => d.kind).join(', '),
    found: base.constructor.name,
  });
}

function makeVariable(values: Float32Array, shape: [number, number]): tf.Variable<tf.Rank.R2> {
  const t = tf.tensor2d(values, shape);
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

export class LoraLinear implements Linear {
  readonly kind = 'lora';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly name: string;
  readonly r: number;
  readonly loraAlpha: number;
  readonly loraDropout: number;
  readonly useRslora: boolean;
  /** A [r, in]. */
  readonly loraA: tf.Variable<tf.Rank.R2>;
  /** B [out, r]. */
  readonly loraB: tf.Variable<tf.Rank.R2>;
  /** Training mode: dropout on; a merged layer refuses to train. */
  training = false;
  private current: Linear;
  /** The untouched base while merged (restored exactly by unmerge). */
  private original: Linear | undefined;
  private dropoutRng: Rng;
  private readonly delta: (x: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  private disposed = false;

  constructor(base: Linear, opts: LoraLayerOptions) {
    if (base instanceof LoraLinear) {
      throw new CliniloraError('E_ARG', 'the layer already has a LoRA adapter', { field: opts.name ?? 'base', hint: 'detach it first' });
    }
    this.current = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.name = opts.name ?? 'lora';
    this.r = opts.r;
    this.loraAlpha = opts.loraAlpha;
    this.loraDropout = opts.loraDropout ?? 0;
    this.useRslora = opts.useRslora ?? false;
    this.dropoutRng = opts.rng.split('dropout');
    const init = opts.initLoraWeights ?? true;
    const initRng = opts.rng.split('init');
    const a = new Float32Array(this.r * this.inFeatures);
    if (init === 'gaussian') initRng.fillNormal(a, 1 / this.r);
    else initRng.fillUniform(a, -1 / Math.sqrt(this.inFeatures), 1 / Math.sqrt(this.inFeatures)); // kaiming-uniform, a = √5
    const b = new Float32Array(this.outFeatures * this.r);
    if (init === false) initRng.fillUniform(b, -1 / Math.sqrt(this.r), 1 / Math.sqrt(this.r)); // nn.Linear's default init, fan_in = r
    this.loraA = makeVariable(a, [this.r, this.inFeatures]);
    this.loraB = makeVariable(b, [this.outFeatures, this.r]);
    this.delta = makeLoraDelta(this.scaling);
  }

  /** loraAlpha / r, or loraAlpha / √r with rsLoRA. */
  get scaling(): number {
    return this.useRslora ? this.loraAlpha / Math.sqrt(this.r) : this.loraAlpha / this.r;
  }

  /** The base layer currently used (the merged one while merged). */
  get base(): Linear {
    return this.current;
  }

  get merged(): boolean {
    return this.original !== undefined;
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    this.checkAlive();
    checkInput(x, this.inFeatures, `LoraLinear(${this.name})`);
    if (this.merged) {
      if (this.training) {
        throw new CliniloraError('E_ARG', 'a merged LoRA layer cannot train', { field: this.name, hint: 'call unmerge() before training' });
      }
      return this.current.apply(x);
    }
    return tf.tidy(() => {
      const y = this.current.apply(x); // [N, out]
      const xd = this.training && this.loraDropout > 0 ? tf.mul(x, this.dropoutMask(x.shape[0])) : x; // [N, in]
      return tf.add(y, this.delta(xd, this.loraA, this.loraB)) as tf.Tensor2D;
    });
  }

  /** Inverted-dropout mask [N, in]: 0 with probability p, else 1/(1 − p); drawn from the seeded stream. */
  private dropoutMask(n: number): tf.Tensor2D {
    const p = this.loraDropout;
    const keep = 1 / (1 - p);
    const m = new Float32Array(n * this.inFeatures);
    for (let i = 0; i < m.length; i++) m[i] = this.dropoutRng.uniform() < p ? 0 : keep;
    return tf.tensor2d(m, [n, this.inFeatures]);
  }

  /** The dropout stream's state (for checkpoints) and its restore. */
  dropoutState(): RngState {
    return this.dropoutRng.state();
  }

  setDropoutState(s: RngState): void {
    this.dropoutRng = new Rng(s);
  }

  /** B · A · scaling [out, in] (PEFT `get_delta_weight`). */
  getDeltaWeight(): tf.Tensor2D {
    this.checkAlive();
    return tf.tidy(() => tf.mul(tf.matMul(this.loraB, this.loraA), this.scaling) as tf.Tensor2D);
  }

  /** The effective weight [out, in]: base + delta (or the merged base). */
  weight(): tf.Tensor2D {
    this.checkAlive();
    if (this.merged) return this.current.weight();
    return tf.tidy(() => {
      const w = this.current.weight();
      return tf.add(w, this.getDeltaWeight()) as tf.Tensor2D;
    });
  }

  /**
   * W ← W + B·A·scaling into a new base of the same kind (dequantize, add, requantize for int8/NF4).
   * Like PEFT's safe_merge, the sum is checked first and non-finite values are rejected (nothing
   * changes). The original base is kept so that unmerge() restores it exactly.
   */
  merge(opts: MergeOptions = {}): void {
    this.checkAlive();
    const warn = opts.onWarning ?? defaultWarn;
    if (this.merged) {
      warn(`LoRA layer '${this.name}' is already merged; nothing to do`);
      return;
    }
    const w = this.current.weight();
    const d = this.getDeltaWeight();
    const merged = new Float32Array(w.dataSync());
    const delta = d.dataSync();
    w.dispose();
    d.dispose();
    let bad = 0;
    for (let i = 0; i < merged.length; i++) {
      merged[i] = merged[i]! + delta[i]!;
      if (!Number.isFinite(merged[i]!)) bad++;
    }
    if (bad > 0) {
      throw new CliniloraError('E_ARG', `merging the adapter gives ${bad} non-finite weight value(s); the adapter seems broken`, {
        field: this.name,
        hint: 'check the adapter weights (NaN/Inf) before merging',
      });
    }
    if (this.current.kind !== 'float') {
      warn(`merging LoRA into the ${this.current.kind} layer '${this.name}': the merged weight is requantized, which rounds it`);
    }
    const rebuilt = rebuildBase(this.current, merged, this.name);
    this.original = this.current;
    this.current = rebuilt;
  }

  /** Restores the original base exactly (its packed data was kept while merged). */
  unmerge(opts: MergeOptions = {}): void {
    this.checkAlive();
    if (this.original === undefined) {
      (opts.onWarning ?? defaultWarn)(`LoRA layer '${this.name}' is not merged; nothing to do`);
      return;
    }
    this.current.dispose();
    this.current = this.original;
    this.original = undefined;
  }

  /** Merges (if needed) and returns the merged base; this wrapper, A, B and the original base are disposed. */
  mergeAndUnload(opts: MergeOptions = {}): Linear {
    if (!this.merged) this.merge(opts);
    const out = this.current;
    this.original!.dispose();
    this.original = undefined;
    this.loraA.dispose();
    this.loraB.dispose();
    this.disposed = true;
    return out;
  }

  /** Drops the adapter and returns the untouched original base (PEFT `unload`); this wrapper is disposed. */
  unload(): Linear {
    if (this.merged) this.unmerge();
    const out = this.current;
    this.loraA.dispose();
    this.loraB.dispose();
    this.disposed = true;
    return out;
  }

  /** Replaces A and B (shapes checked). */
  setLoraWeights(a: Float32Array, b: Float32Array): void {
    this.checkAlive();
    if (a.length !== this.r * this.inFeatures || b.length !== this.outFeatures * this.r) {
      throw new CliniloraError('E_SHAPE', 'LoRA weights have the wrong size', {
        field: this.name,
        expected: `lora_A ${this.r}×${this.inFeatures}, lora_B ${this.outFeatures}×${this.r}`,
        found: `${a.length} and ${b.length} values`,
      });
    }
    tf.tidy(() => {
      this.loraA.assign(tf.tensor2d(a, [this.r, this.inFeatures]));
      this.loraB.assign(tf.tensor2d(b, [this.outFeatures, this.r]));
    });
  }

  trainableVariables(): tf.Variable[] {
    return this.disposed ? [] : [this.loraA, this.loraB];
  }

  bytes(): number {
    const adapter = this.disposed ? 0 : 4 * this.r * (this.inFeatures + this.outFeatures);
    return this.current.bytes() + (this.original?.bytes() ?? 0) + adapter;
  }

  dispose(): void {
    if (this.disposed) return;
    this.current.dispose();
    this.original?.dispose();
    this.loraA.dispose();
    this.loraB.dispose();
    this.disposed = true;
  }

  private checkAlive(): void {
    if (this.disposed) throw new CliniloraError('E_ARG', 'this LoRA layer was unloaded or disposed', { field: this.name });
  }
}
