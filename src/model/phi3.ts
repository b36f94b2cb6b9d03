/**
 * Phi-3 (HF `Phi3ForCausalLM`) on TensorFlow.js, top to bottom: RMSNorm, rotary, attention, MLP,
 * block, model. Module and tensor names are the checkpoint's (`model.layers.3.self_attn.qkv_proj`),
 * so weights load with no renaming table.
 *
 * Every linear layer is a `Linear` made by a caller-supplied factory (float by default; int8/NF4
 * from the quantization code) and can be swapped by name (LoRA wraps them): see LinearContainer.
 * Activations are [N, D] with N = B·T rows; attention works on [B, H, T, hd].
 */
import { tf } from '../backend/tf.ts';
import type { Linear } from '../kernels/linear.ts';
import { FloatLinear } from '../kernels/float-linear.ts';
import { rmsNorm } from '../kernels/rmsnorm.ts';
import { ropeTables, applyRope, type RopeTables } from '../kernels/rope.ts';
import { attention } from '../kernels/attention.ts';
import { swiglu } from '../kernels/swiglu.ts';
import { Embedding, halfToF32, type EmbeddingStorage, type HalfBits } from '../kernels/embedding.ts';
import { CliniloraError } from '../errors.ts';
import { Rng, type RngState } from '../util/random.ts';
import { nestedGradients, recordingGradients, withGrad } from '../kernels/custom-grad.ts';
import { headDim, type PhiConfig } from './config.ts';
import { toFlat, expectShape, type TokenBatch } from './batch.ts';
import { positionsFromMask, attentionBias } from './mask.ts';
import { KVCache } from './kv-cache.ts';
import type { LinearContainer, LinearFactory } from './linear-container.ts';
import { lossFromIds, type LossOptions } from './loss.ts';

/** One checkpoint tensor: float32, or fp16/bf16 bits (accepted for the embedding without a copy). */
export type WeightData = Float32Array | HalfBits;
/** Returns the tensor called `name` (HF name with `.weight`), row-major; throws when missing. */
export type WeightSource = (name: string) => WeightData;

export interface Phi3Options {
  /** Builds each linear layer (default: frozen FloatLinear, or trainable with `trainable`). */
  linearFactory?: LinearFactory;
  /** All weights trainable variables: pretraining the base. Default false (frozen: LoRA). */
  trainable?: boolean;
  /** Token table storage (default float32) and whether it trains (default: `trainable`). */
  embedding?: { storage?: EmbeddingStorage; trainable?: boolean };
}

export interface ForwardOptions {
  /** [B, T] 1 = real token, 0 = padding (right padding for training, left for generation). With a
   *  cache: the new tokens only. Default: all ones. */
  attentionMask?: TokenBatch;
  /** [B, T] explicit RoPE positions (default: counted from the mask, continuing the cache). */
  positions?: TokenBatch;
  /** Incremental decoding: attends to the cached keys and appends the new ones. */
  cache?: KVCache;
  /** Dropout on (needs `rng` when the config has a non-zero dropout rate). */
  training?: boolean;
  /** The dropout stream (rng.split('dropout')). */
  rng?: Rng;
  /** Logits for the last position only: [B, 1, V]. */
  lastOnly?: boolean;
  /**
   * Gradient checkpointing (HF `gradient_checkpointing`): under a gradient scope, each decoder layer
   * keeps only its input and recomputes its forward in the backward, so activation memory is one
   * layer's plus the layer inputs instead of every layer's (~1/3 more compute). Same gradients:
   * the recompute replays the layer's dropout draws. Default false.
   */
  gradientCheckpointing?: boolean;
}

/** Per-forward context shared by all blocks. */
interface Ctx {
  B: number;
  T: number;
  rope: RopeTables;
  bias: tf.Tensor4D;
  cache?: KVCache;
  dropout?: { rng: Rng; resid: number; attn: number };
}

/** A layer with its own dropout stream (a LoRA adapter): the recompute rewinds it. */
interface OwnDropout {
  dropoutState(): RngState;
  setDropoutState(s: RngState): void;
}
const hasOwnDropout = (l: object): l is OwnDropout => 'dropoutState' in l && 'setDropoutState' in l;

function dropout(x: tf.Tensor2D, rate: number, ctx: Ctx): tf.Tensor2D {
  if (ctx.dropout === undefined || rate === 0) return x;
  return tf.dropout(x, rate, undefined, ctx.dropout.rng.nextU32()) as tf.Tensor2D;
}

// ---- RMSNorm ------------------------------------------------------------------------------

class RMSNorm {
  /** [D]; a trainable variable when pretraining. */
  readonly weight: tf.Tensor1D;
  constructor(data: Float32Array, readonly eps: number, trainable: boolean) {
    const t = tf.tensor1d(data);
    this.weight = trainable ? tf.variable(t, true) : t;
    if (trainable) t.dispose();
  }
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return rmsNorm(x, this.weight, this.eps);
  }
}

// ---- Rotary: cos/sin tables per forward, from positions (src/kernels/rope.ts) ----------------

// ---- Attention ----------------------------------------------------------------------------

class Phi3Attention {
  private readonly H: number;
  private readonly KV: number;
  private readonly hd: number;
  constructor(c: PhiConfig, public qkvProj: Linear, public oProj: Linear, readonly index: number) {
    this.H = c.numAttentionHeads;
    this.KV = c.numKeyValueHeads;
    this.hd = headDim(c);
  }

  /** x [N, D] → [N, D]. */
  forward(x: tf.Tensor2D, ctx: Ctx): tf.Tensor2D {
    const { B, T } = ctx;
    const { H, KV, hd } = this;
    const qkv = this.qkvProj.apply(x); // [N, (H + 2·KV)·hd]: rows of W are q, then k, then v
    const [q2, k2, v2] = tf.split(qkv, [H * hd, KV * hd, KV * hd], 1);
    const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
    const q = applyRope(heads(q2!, H), ctx.rope); // [B, H, T, hd]
    let k = applyRope(heads(k2!, KV), ctx.rope); // [B, KV, T, hd]
    let v = heads(v2!, KV); // [B, KV, T, hd]
    if (ctx.cache !== undefined) ({ k, v } = ctx.cache.append(this.index, k, v)); // [B, KV, S, hd]
    let keep: tf.Tensor4D | undefined;
    if (ctx.dropout !== undefined && ctx.dropout.attn > 0) {
      const u = tf.randomUniform([B, H, T, k.shape[2]], 0, 1, 'float32', ctx.dropout.rng.nextU32());
      keep = tf.cast(tf.greaterEqual(u, ctx.dropout.attn), 'float32') as tf.Tensor4D;
    }
    const o = attention(q, k, v, {
      scale: 1 / Math.sqrt(hd),
      bias: ctx.bias,
      dropout: keep !== undefined ? { keep, rate: ctx.dropout!.attn } : undefined,
    }); // [B, H, T, hd]
    const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B * T, H * hd]) as tf.Tensor2D; // [N, D]
    return this.oProj.apply(merged);
  }
}

// ---- MLP ------------------------------------------------------------------------------------

class Phi3MLP {
  constructor(public gateUpProj: Linear, public downProj: Linear) {}
  /** x [N, D] → down(silu(gate) ⊙ up) [N, D]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return this.downProj.apply(swiglu(this.gateUpProj.apply(x))); // [N, 2I] → [N, I] → [N, D]
  }
}

// ---- Block ----------------------------------------------------------------------------------

class Phi3DecoderLayer {
  constructor(
    readonly inputLayernorm: RMSNorm,
    readonly selfAttn: Phi3Attention,
    readonly postAttentionLayernorm: RMSNorm,
    readonly mlp: Phi3MLP,
  ) {}
  forward(x: tf.Tensor2D, ctx: Ctx): tf.Tensor2D {
    const resid = ctx.dropout?.resid ?? 0;
    const h = tf.add(x, dropout(this.selfAttn.forward(this.inputLayernorm.forward(x), ctx), resid, ctx)) as tf.Tensor2D;
    return tf.add(h, dropout(this.mlp.forward(this.postAttentionLayernorm.forward(h)), resid, ctx)) as tf.Tensor2D;
  }

  linears(): Linear[] {
    return [this.selfAttn.qkvProj, this.selfAttn.oProj, this.mlp.gateUpProj, this.mlp.downProj];
  }

  trainableVariables(): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const n of [this.inputLayernorm, this.postAttentionLayernorm]) if (n.weight instanceof tf.Variable && n.weight.trainable) out.push(n.weight);
    for (const l of this.linears()) out.push(...l.trainableVariables());
    return out;
  }

  /**
   * forward() as one custom-gradient op over (x, trainable variables): nothing inside is taped, and
   * the backward reruns the layer under its own gradient scope with every dropout stream rewound to
   * where this forward found it (then put back, so the streams go on as without checkpointing).
   */
  checkpointed(x: tf.Tensor2D, ctx: Ctx): tf.Tensor2D {
    const vars = this.trainableVariables();
    const own = this.linears().filter((l): l is Linear & OwnDropout => hasOwnDropout(l));
    const ownStart = own.map((l) => l.dropoutState());
    const sharedStart = ctx.dropout?.rng.state();
    const op = withGrad<tf.Tensor[]>(([xi], save) => {
      // The forward's scope disposes x and the shared tables before the backward: keep them.
      save([xi!, ctx.rope.cos, ctx.rope.sinS, ctx.bias]);
      return {
        value: this.forward(xi as tf.Tensor2D, ctx),
        gradFunc: (dy, saved) => {
          const [xs, cos, sinS, bias] = saved as [tf.Tensor2D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
          const ownNow = own.map((l) => l.dropoutState());
          own.forEach((l, i) => l.setDropoutState(ownStart[i]!));
          const replay: Ctx = {
            ...ctx,
            rope: { cos, sinS },
            bias,
            dropout: ctx.dropout !== undefined ? { ...ctx.dropout, rng: new Rng(sharedStart!) } : undefined,
          };
          try {
            return nestedGradients(() => this.forward(xs, replay), [xs, ...vars], dy);
          } finally {
            own.forEach((l, i) => l.setDropoutState(ownNow[i]!));
          }
        },
      };
    });
    return op(x, ...vars) as tf.Tensor2D;
  }
}

// ---- Model ----------------------------------------------------------------------------------

export class Phi3ForCausalLM implements LinearContainer {
  readonly config: PhiConfig;
  readonly embedTokens: Embedding;
  readonly layers: Phi3DecoderLayer[];
  readonly norm: RMSNorm;
  lmHead: Linear;
  private readonly slots = new Map<string, { get: () => Linear; set: (l: Linear) => void }>();

  private constructor(config: PhiConfig, source: WeightSource, opts: Phi3Options) {
    const c = config;
    this.config = c;
    const trainable = opts.trainable ?? false;
    const factory: LinearFactory = opts.linearFactory ?? ((_n, w, o, i) => new FloatLinear(w, o, i, { trainable }));
    const D = c.hiddenSize;
    const hd = headDim(c);
    const take = (name: string, shape: number[]): WeightData => {
      const data = source(name);
      const n = shape.reduce((a, b) => a * b, 1);
      const found = data instanceof Float32Array ? data.length : (data as HalfBits | undefined)?.bits?.length;
      if (found === undefined) throw new CliniloraError('E_MISSING', 'weight source returned nothing', { field: name, expected: `[${shape.join(', ')}]` });
      if (found !== n) {
        throw new CliniloraError('E_SHAPE', 'tensor has the wrong number of values', { field: name, expected: `[${shape.join(', ')}] = ${n}`, found: String(found) });
      }
      return data;
    };
    const f32 = (d: WeightData): Float32Array => {
      if (d instanceof Float32Array) return d;
      const out = new Float32Array(d.bits.length);
      halfToF32(d, 0, d.bits.length, out);
      return out;
    };
    const linear = (module: string, out: number, inF: number): Linear => {
      const l = factory(module, f32(take(`${module}.weight`, [out, inF])), out, inF);
      if (l.outFeatures !== out || l.inFeatures !== inF) {
        throw new CliniloraError('E_SHAPE', 'the linear factory built a layer of another shape', { field: module, expected: `${out}×${inF}`, found: `${l.outFeatures}×${l.inFeatures}` });
      }
      return l;
    };
    const norm = (name: string) => new RMSNorm(f32(take(name, [D])), c.rmsNormEps, trainable);

    this.embedTokens = new Embedding(take('model.embed_tokens.weight', [c.vocabSize, D]), c.vocabSize, D, {
      storage: opts.embedding?.storage ?? 'float32',
      trainable: opts.embedding?.trainable ?? trainable,
    });
    this.layers = [];
    for (let i = 0; i < c.numHiddenLayers; i++) {
      const p = `model.layers.${i}`;
      const attn = new Phi3Attention(c, linear(`${p}.self_attn.qkv_proj`, (c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd, D),
        linear(`${p}.self_attn.o_proj`, D, c.numAttentionHeads * hd), i);
      const mlp = new Phi3MLP(linear(`${p}.mlp.gate_up_proj`, 2 * c.intermediateSize, D), linear(`${p}.mlp.down_proj`, D, c.intermediateSize));
      this.layers.push(new Phi3DecoderLayer(norm(`${p}.input_layernorm.weight`), attn, norm(`${p}.post_attention_layernorm.weight`), mlp));
      this.slots.set(`${p}.self_attn.qkv_proj`, { get: () => attn.qkvProj, set: (l) => (attn.qkvProj = l) });
      this.slots.set(`${p}.self_attn.o_proj`, { get: () => attn.oProj, set: (l) => (attn.oProj = l) });
      this.slots.set(`${p}.mlp.gate_up_proj`, { get: () => mlp.gateUpProj, set: (l) => (mlp.gateUpProj = l) });
      this.slots.set(`${p}.mlp.down_proj`, { get: () => mlp.downProj, set: (l) => (mlp.downProj = l) });
    }
    this.norm = norm('model.norm.weight');
    // Tied embeddings (not Phi-3's default): the head starts as a copy of the table.
    this.lmHead = c.tieWordEmbeddings
      ? factory('lm_head', f32(take('model.embed_tokens.weight', [c.vocabSize, D])), c.vocabSize, D)
      : linear('lm_head', c.vocabSize, D);
    this.slots.set('lm_head', { get: () => this.lmHead, set: (l) => (this.lmHead = l) });
  }

  /** Builds the model, reading each tensor from `source` once, in model order. */
  static fromWeights(config: PhiConfig, source: WeightSource, opts: Phi3Options = {}): Phi3ForCausalLM {
    return new Phi3ForCausalLM(config, source, opts);
  }

  /** [B·T, D] hidden states after the last block, before the final norm. */
  hiddenStates(inputIds: TokenBatch, opts: ForwardOptions = {}): { hidden: tf.Tensor2D; B: number; T: number } {
    const c = this.config;
    const ids = toFlat(inputIds, 'inputIds');
    const { B, T } = ids;
    const mask = opts.attentionMask !== undefined ? toFlat(opts.attentionMask, 'attentionMask') : { data: new Int32Array(B * T).fill(1), B, T };
    expectShape(mask, B, T, 'attentionMask');
    const cache = opts.cache;
    if (cache !== undefined && cache.batch !== B) {
      throw new CliniloraError('E_SHAPE', 'cache batch size differs from the input', { field: 'cache', expected: String(B), found: String(cache.batch) });
    }
    const { positions: fromMask, next } = positionsFromMask(mask.data, B, T, cache?.nextPos);
    let positions = fromMask;
    if (opts.positions !== undefined) {
      const p = toFlat(opts.positions, 'positions');
      expectShape(p, B, T, 'positions');
      positions = p.data;
    }
    const past = cache?.length ?? 0;
    const keyMask = Array.from({ length: B }, (_, b) => {
      const m = new Uint8Array(past + T);
      if (cache !== undefined) m.set(cache.keyMask[b]!);
      for (let t = 0; t < T; t++) m[past + t] = mask.data[b * T + t] !== 0 ? 1 : 0;
      return m;
    });
    const training = opts.training === true;
    const rates = { resid: c.residPdrop, attn: c.attentionDropout, embd: c.embdPdrop };
    const anyDrop = training && (rates.resid > 0 || rates.attn > 0 || rates.embd > 0);
    if (anyDrop && opts.rng === undefined) {
      throw new CliniloraError('E_ARG', 'training with dropout needs a random stream', { field: 'rng', hint: "pass rng: root.split('dropout')" });
    }
    const hidden = tf.tidy(() => {
      const ctx: Ctx = {
        B,
        T,
        rope: ropeTables(positions, B, T, headDim(c), c.ropeTheta),
        bias: tf.tensor4d(attentionBias(keyMask, T, past, c.slidingWindow), [B, 1, T, past + T]),
        cache,
        dropout: anyDrop ? { rng: opts.rng!, resid: rates.resid, attn: rates.attn } : undefined,
      };
      let x = dropout(this.embedTokens.forward(ids.data), rates.embd, ctx); // [N, D]
      const checkpoint = opts.gradientCheckpointing === true && cache === undefined && recordingGradients();
      for (const layer of this.layers) x = checkpoint ? layer.checkpointed(x, ctx) : layer.forward(x, ctx);
      return x;
    });
    cache?.advance(mask.data, T, next);
    return { hidden, B, T };
  }

  /** Logits [B, T, V] (or [B, 1, V] with `lastOnly`). The caller disposes them. */
  forward(inputIds: TokenBatch, opts: ForwardOptions = {}): tf.Tensor3D {
    const { hidden, B, T } = this.hiddenStates(inputIds, opts);
    return tf.tidy(() => {
      const D = this.config.hiddenSize;
      let h: tf.Tensor2D = hidden;
      if (opts.lastOnly === true) h = tf.reshape(tf.slice(tf.reshape(hidden, [B, T, D]), [0, T - 1, 0], [B, 1, D]), [B, D]);
      const logits = this.lmHead.apply(this.norm.forward(h)); // [B·T, V]
      hidden.dispose();
      return tf.reshape(logits, [B, opts.lastOnly === true ? 1 : T, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  /**
   * Mean cross-entropy of next-token prediction over tokens whose `labelsMask` is 1 (token t is
   * predicted from position t − 1; prompt and padding tokens get 0). See loss.ts.
   */
  lossFromIds(inputIds: TokenBatch, labelsMask: TokenBatch, opts: LossOptions = {}): tf.Scalar {
    return lossFromIds(this, inputIds, labelsMask, opts);
  }

  /** An empty KV cache for `batch` rows. */
  createCache(batch: number): KVCache {
    return new KVCache(batch, this.config.numHiddenLayers);
  }

  // ---- LinearContainer ----

  linearNames(): string[] {
    return [...this.slots.keys()];
  }

  getLinear(name: string): Linear {
    return this.slot(name).get();
  }

  setLinear(name: string, layer: Linear): void {
    const s = this.slot(name);
    const old = s.get();
    if (old.inFeatures !== layer.inFeatures || old.outFeatures !== layer.outFeatures) {
      throw new CliniloraError('E_SHAPE', 'replacement layer has another shape', { field: name, expected: `${old.outFeatures}×${old.inFeatures}`, found: `${layer.outFeatures}×${layer.inFeatures}` });
    }
    s.set(layer);
  }

  private slot(name: string): { get: () => Linear; set: (l: Linear) => void } {
    const s = this.slots.get(name);
    if (s === undefined) {
      const names = this.linearNames();
      throw new CliniloraError('E_ARG', 'no linear layer of that name', {
        field: name,
        expected: `a module name like ${names[0]} … ${names[names.length - 1]} (${names.length} in all)`,
        found: JSON.stringify(name),
      });
    }
    return s;
  }

  // ---- parameters ----

  /** [HF tensor name, float32 data, shape] for every weight, one at a time (for saving). */
  *namedWeights(): Generator<[string, Float32Array, number[]]> {
    const c = this.config;
    const D = c.hiddenSize;
    yield ['model.embed_tokens.weight', this.embedTokens.weightData(), [c.vocabSize, D]];
    const lin = (name: string): [string, Float32Array, number[]] => {
      const l = this.getLinear(name);
      const w = l.weight();
      const data = w.dataSync() as Float32Array;
      w.dispose();
      return [`${name}.weight`, data, [l.outFeatures, l.inFeatures]];
    };
    const vec = (name: string, n: RMSNorm): [string, Float32Array, number[]] => [name, n.weight.dataSync() as Float32Array, [D]];
    for (let i = 0; i < c.numHiddenLayers; i++) {
      const p = `model.layers.${i}`;
      const layer = this.layers[i]!;
      yield vec(`${p}.input_layernorm.weight`, layer.inputLayernorm);
      yield lin(`${p}.self_attn.qkv_proj`);
      yield lin(`${p}.self_attn.o_proj`);
      yield vec(`${p}.post_attention_layernorm.weight`, layer.postAttentionLayernorm);
      yield lin(`${p}.mlp.gate_up_proj`);
      yield lin(`${p}.mlp.down_proj`);
    }
    yield vec('model.norm.weight', this.norm);
    if (!c.tieWordEmbeddings) yield lin('lm_head');
  }

  /** Every trainable variable: adapters, and with `trainable` all weights. */
  trainableVariables(): tf.Variable[] {
    const out: tf.Variable[] = [...this.embedTokens.trainableVariables()];
    const norms = [...this.layers.flatMap((l) => [l.inputLayernorm, l.postAttentionLayernorm]), this.norm];
    for (const n of norms) if (n.weight instanceof tf.Variable && n.weight.trainable) out.push(n.weight);
    for (const name of this.linearNames()) out.push(...this.getLinear(name).trainableVariables());
    return out;
  }

  /** Bytes held by the weights (quantized layers count their packed bytes). */
  bytes(): number {
    let n = this.embedTokens.bytes() + this.config.hiddenSize * 4 * (2 * this.config.numHiddenLayers + 1);
    for (const name of this.linearNames()) n += this.getLinear(name).bytes();
    return n;
  }

  dispose(): void {
    this.embedTokens.dispose();
    for (const l of this.layers) {
      l.inputLayernorm.weight.dispose();
      l.postAttentionLayernorm.weight.dispose();
    }
    this.norm.weight.dispose();
    for (const name of this.linearNames()) this.getLinear(name).dispose();
  }
}

/** Number of parameters of a config (embedding and head included). */
export function numParameters(c: PhiConfig): number {
  const D = c.hiddenSize;
  const hd = headDim(c);
  const perLayer = (c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd * D + c.numAttentionHeads * hd * D + 3 * c.intermediateSize * D + 2 * D;
  return c.vocabSize * D * (c.tieWordEmbeddings ? 1 : 2) + c.numHiddenLayers * perLayer + D;
}
