/**
 * An independent Phi-3 forward for tests: plain loops in Float64, written from the HF modeling code
 * (Phi3RMSNorm, rotate_half RoPE, repeat_kv, eager attention with a causal + sliding-window mask,
 * SwiGLU MLP), not from src/. One sequence at a time, no padding: callers compare real tokens.
 */
import { getPreset, type PhiConfig } from '../src/model/config.ts';
import { Rng } from '../src/util/random.ts';

export type Weights = Map<string, Float32Array>;

/** Random weights with every part non-trivial (norm weights ≠ 1), std large enough to matter. */
/** A tiny GQA config (vocab 40, hidden 16, 2 layers, 4 heads / 2 kv heads) for exactness tests. */
export function tinyConfig(over: Partial<PhiConfig> = {}): PhiConfig {
  return {
    ...getPreset('phi3-nano'),
    vocabSize: 40,
    hiddenSize: 16,
    intermediateSize: 24,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    padTokenId: 0,
    ...over,
  };
}

export function testWeights(c: PhiConfig, seed: number, std = 0.35): Weights {
  const rng = new Rng(seed);
  const D = c.hiddenSize;
  const hd = D / c.numAttentionHeads;
  const w: Weights = new Map();
  const mat = (name: string, out: number, inF: number) => w.set(name, rng.fillNormal(new Float32Array(out * inF), std / Math.sqrt(inF / 16)));
  const vec = (name: string) => w.set(name, rng.fillNormal(new Float32Array(D), 0.2, 1));
  mat('model.embed_tokens.weight', c.vocabSize, D);
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    vec(`${p}.input_layernorm.weight`);
    mat(`${p}.self_attn.qkv_proj.weight`, (c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd, D);
    mat(`${p}.self_attn.o_proj.weight`, D, D);
    vec(`${p}.post_attention_layernorm.weight`);
    mat(`${p}.mlp.gate_up_proj.weight`, 2 * c.intermediateSize, D);
    mat(`${p}.mlp.down_proj.weight`, D, c.intermediateSize);
  }
  vec('model.norm.weight');
  mat('lm_head.weight', c.vocabSize, D);
  return w;
}

/** y = x Wᵀ for x [n][in], W [out, in] row-major. */
function linear(x: Float64Array[], W: Float32Array, out: number): Float64Array[] {
  return x.map((row) => {
    const inF = row.length;
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += row[i]! * W[o * inF + i]!;
      y[o] = s;
    }
    return y;
  });
}

function rmsnorm(x: Float64Array[], w: Float32Array, eps: number): Float64Array[] {
  return x.map((row) => {
    let ss = 0;
    for (const v of row) ss += v * v;
    const r = 1 / Math.sqrt(ss / row.length + eps);
    return row.map((v, i) => v * r * w[i]!);
  });
}

/** HF rotate_half RoPE on one head vector at position p. */
function rope(v: Float64Array, p: number, theta: number): Float64Array {
  const hd = v.length;
  const half = hd / 2;
  const out = new Float64Array(hd);
  for (let i = 0; i < hd; i++) {
    const f = p / Math.pow(theta, (2 * (i % half)) / hd);
    const rot = i < half ? -v[i + half]! : v[i - half]!; // rotate_half
    out[i] = v[i]! * Math.cos(f) + rot * Math.sin(f);
  }
  return out;
}

/**
 * Logits [T][V] for one unpadded sequence; positions default to 0..T-1.
 */
export function referenceLogits(c: PhiConfig, W: Weights, ids: number[], positions?: number[]): Float64Array[] {
  const pos = (t: number) => positions?.[t] ?? t;
  const T = ids.length;
  const D = c.hiddenSize;
  const H = c.numAttentionHeads;
  const KV = c.numKeyValueHeads;
  const hd = D / H;
  const G = H / KV;
  const get = (n: string) => W.get(n)!;
  const emb = get('model.embed_tokens.weight');
  let x = ids.map((id) => Float64Array.from(emb.subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsnorm(x, get(`${p}.input_layernorm.weight`), c.rmsNormEps);
    const qkv = linear(h, get(`${p}.self_attn.qkv_proj.weight`), (H + 2 * KV) * hd);
    const q = (t: number, head: number) => rope(qkv[t]!.slice(head * hd, (head + 1) * hd), pos(t), c.ropeTheta);
    const k = (t: number, head: number) => rope(qkv[t]!.slice((H + head) * hd, (H + head + 1) * hd), pos(t), c.ropeTheta);
    const v = (t: number, head: number) => qkv[t]!.slice((H + KV + head) * hd, (H + KV + head + 1) * hd);
    const attnOut = Array.from({ length: T }, () => new Float64Array(D));
    for (let head = 0; head < H; head++) {
      const kvh = Math.floor(head / G); // repeat_kv
      const ks = Array.from({ length: T }, (_, j) => k(j, kvh));
      const vs = Array.from({ length: T }, (_, j) => v(j, kvh));
      for (let i = 0; i < T; i++) {
        const qi = q(i, head);
        const allowed: number[] = [];
        for (let j = 0; j <= i; j++) if (c.slidingWindow === null || i - j < c.slidingWindow) allowed.push(j);
        const scores = allowed.map((j) => {
          let s = 0;
          for (let d = 0; d < hd; d++) s += qi[d]! * ks[j]![d]!;
          return s / Math.sqrt(hd);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let a = 0; a < allowed.length; a++) {
          for (let d = 0; d < hd; d++) attnOut[i]![head * hd + d]! += (e[a]! / z) * vs[allowed[a]!]![d]!;
        }
      }
    }
    const o = linear(attnOut, get(`${p}.self_attn.o_proj.weight`), D);
    x = x.map((row, t) => row.map((val, d) => val + o[t]![d]!));
    const h2 = rmsnorm(x, get(`${p}.post_attention_layernorm.weight`), c.rmsNormEps);
    const gu = linear(h2, get(`${p}.mlp.gate_up_proj.weight`), 2 * c.intermediateSize);
    const act = gu.map((row) => {
      const I = c.intermediateSize;
      const a = new Float64Array(I);
      for (let i = 0; i < I; i++) {
        const g = row[i]!;
        a[i] = (g / (1 + Math.exp(-g))) * row[I + i]!; // silu(gate) · up
      }
      return a;
    });
    const mlp = linear(act, get(`${p}.mlp.down_proj.weight`), D);
    x = x.map((row, t) => row.map((val, d) => val + mlp[t]![d]!));
  }
  return linear(rmsnorm(x, get('model.norm.weight'), c.rmsNormEps), get('lm_head.weight'), c.vocabSize);
}

/** log softmax(logits)[target] in Float64. */
export function logProb(logits: Float64Array, target: number): number {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - m);
  return logits[target]! - m - Math.log(z);
}

/** max |a − b| over a flat array and nested rows. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxDiff: lengths ${a.length} and ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
