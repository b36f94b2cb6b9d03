/**
 * Training-step profile (issue 4 / issue 7): where the time of one LoRA step goes.
 *
 * Setups (the shipped base models/phi3-nano, real auditor samples through src/train's encodeSample):
 *   auditor-int8  — `npm start`'s recipe: int8 base, LoRA r16/α32 on qkv, o, gate_up, down, batch 8,
 *                   maxLength 320, answer-only loss (answerLoss, lm_head at target rows only).
 *   auditor-float — the same on the float (dequantized) base.
 *   issue7-float  — issue 7's PyTorch-comparable step: float base, LoRA r16/α32/dropout 0.05 on qkv+o,
 *                   batch 4 × 256, every position a target (full causal-LM loss).
 * Rows (kind): `step` (median wall ms of full steps = forward + backward + clip + AdamW, tokens/s),
 * `part` (each piece timed alone on the step's shapes, × its calls per step, share of the step),
 * `kernels` / `kernel` (tf.profile of one step: kernel calls, Σ kernel ms, JS time outside kernels,
 * the costliest kernels, matMul time by layer), `int8` (int8 paths vs a cached float weight),
 * `overhead` (fixed cost of one tfjs kernel call and of one tensor upload), `machine` (load).
 * BENCH_REPS (default 3) timed runs after one warm-up; medians. BENCH_TRAIN_SETUPS picks setups.
 */
import os from 'node:os';
import { tf } from '../src/backend/tf.ts';
import { currentBackend, initBackend } from '../src/backend/index.ts';
import { buildDataset } from '../src/data/index.ts';
import { phi3Tokenizer } from '../src/data/tokens.ts';
import type { Sample } from '../src/data/sample.ts';
import { loadPhi3 } from '../src/model/checkpoint.ts';
import { headDim } from '../src/model/config.ts';
import { targetsFromMask } from '../src/model/loss.ts';
import { attentionBias, positionsFromMask } from '../src/model/mask.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { makeLoraDelta, LoraLinear } from '../src/model/lora/layer.ts';
import { attachLora, loraLayers, setLoraTraining } from '../src/model/lora/model.ts';
import { attention } from '../src/kernels/attention.ts';
import { linearCrossEntropy } from '../src/kernels/cross-entropy.ts';
import { gatherRows } from '../src/kernels/embedding.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import { dequantizeInt8, int8CodesChunk } from '../src/kernels/int8.ts';
import { Int8Linear } from '../src/kernels/int8-linear.ts';
import type { Linear } from '../src/kernels/linear.ts';
import { rmsNorm } from '../src/kernels/rmsnorm.ts';
import { applyRope, ropeTables } from '../src/kernels/rope.ts';
import { swiglu } from '../src/kernels/swiglu.ts';
import { AdamW, answerLoss, clipGradNorm, collate, encodeSample, namedLoraVariables, type Batch, type EncodedSample } from '../src/train/index.ts';
import type { Phi3Tokenizer } from '../src/tokenizer/index.ts';
import { PHI3_PAD_ID } from '../src/tokenizer/index.ts';
import { Rng } from '../src/util/random.ts';

export type Row = Record<string, number | string>;
export const BASE_DIR = 'models/phi3-nano';
export const reps = (): number => Math.max(1, Number(process.env.BENCH_REPS ?? 3));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
export const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** Median wall ms of `fn` (inside tf.tidy) over `n` runs after one warm-up. wasm kernels are synchronous. */
export function timeMs(fn: () => unknown, n = reps()): number {
  const once = (): number => {
    const t0 = performance.now();
    tf.tidy(() => {
      fn();
    });
    return performance.now() - t0;
  };
  once();
  return median(Array.from({ length: n }, once));
}

export function machineRow(what: string): Row {
  const be = currentBackend();
  const [l1, l5] = os.loadavg();
  return { kind: 'machine', what, cpus: os.cpus().length, loadavg1: round(l1!), loadavg5: round(l5!), backend: be?.name ?? '?', threads: be?.threads ?? 0 };
}

/** Real auditor samples (the same generator and seed as auditor-nano, a small n) and the tokenizer. */
export async function auditorSamples(n = 120): Promise<{ train: Sample[]; test: Sample[]; tok: Phi3Tokenizer }> {
  const ds = await buildDataset('auditor', { n, seed: 42 });
  return { train: ds.splits.train, test: ds.splits.test, tok: await phi3Tokenizer() };
}

// ---- tf.profile of a function: kernel calls and where kernel time goes ----------------------------

export interface KernelStat {
  name: string;
  calls: number;
  ms: number;
}
export interface KernelProfile {
  wallMs: number;
  kernelMs: number;
  calls: number;
  byName: KernelStat[];
  /** MatMul ms by what it computes (classified from shapes by `label`). */
  byLabel: KernelStat[];
  smallCalls: number;
  smallMs: number;
  newTensors: number;
}

/** Profiles `fn` (registered kernels only: a customGrad op's entry would count its inner kernels twice). */
export async function profileKernels(fn: () => void, label: (k: { name: string; inputShapes: number[][] }) => string | undefined): Promise<KernelProfile> {
  const t0 = performance.now();
  const info = await tf.profile(() => {
    tf.tidy(fn);
  });
  const wallMs = performance.now() - t0;
  const backend = tf.getBackend();
  const ks = info.kernels.filter((k) => tf.getKernel(k.name, backend) !== undefined);
  const add = (m: Map<string, KernelStat>, name: string, ms: number) => {
    const s = m.get(name) ?? { name, calls: 0, ms: 0 };
    s.calls++;
    s.ms += ms;
    m.set(name, s);
  };
  const byName = new Map<string, KernelStat>();
  const byLabel = new Map<string, KernelStat>();
  let kernelMs = 0;
  let smallCalls = 0;
  let smallMs = 0;
  for (const k of ks) {
    const ms = k.kernelTimeMs as number;
    kernelMs += ms;
    add(byName, k.name, ms);
    const l = label({ name: k.name, inputShapes: k.inputShapes as number[][] });
    if (l !== undefined) add(byLabel, l, ms);
    if (ms < 0.05) {
      smallCalls++;
      smallMs += ms;
    }
  }
  const sorted = (m: Map<string, KernelStat>) => [...m.values()].sort((a, b) => b.ms - a.ms);
  return { wallMs, kernelMs, calls: ks.length, byName: sorted(byName), byLabel: sorted(byLabel), smallCalls, smallMs, newTensors: info.newTensors };
}

/** A label for MatMul kernels from the model's dimensions (V: lm_head, r: LoRA, (out, in): a projection). */
export function matmulLabeler(c: { V: number; r: number; proj: Array<[string, number, number]> }): (k: { name: string; inputShapes: number[][] }) => string | undefined {
  return (k) => {
    if (k.name !== 'BatchMatMul') return undefined;
    const dims = new Set(k.inputShapes.flat());
    if (dims.has(c.V)) return 'lm_head';
    if (dims.has(c.r)) return 'lora';
    const [a, b] = k.inputShapes as [number[], number[]];
    const is = (s: number[], x: number, y: number) => s.length === 2 && s[0] === x && s[1] === y;
    // fwd int8/NF4: W[out,in]·xᵀ[in,N]; fwd float: x[N,in]·Wt[in,out]; bwd: dy[N,out]·W[out,in].
    for (const [name, out, inF] of c.proj) if (is(a, out, inF) || is(b, inF, out) || (a.length === 2 && a[1] === out && is(b, out, inF))) return name;
    return a!.length > 2 ? 'attention (batched)' : 'attention / other';
  };
}

export function profileRows(setup: string, p: KernelProfile, refMs: number): Row[] {
  const rows: Row[] = [{
    kind: 'kernels', setup, wall_ms: round(p.wallMs, 1), kernel_ms: round(p.kernelMs, 1), outside_kernels_ms: round(p.wallMs - p.kernelMs, 1),
    kernel_calls: p.calls, small_calls: p.smallCalls, small_ms: round(p.smallMs, 1), new_tensors: p.newTensors,
  }];
  for (const s of p.byName.slice(0, 12)) rows.push({ kind: 'kernel', setup, kernel: s.name, calls: s.calls, ms: round(s.ms, 1), share: round(s.ms / refMs, 3) });
  for (const s of p.byLabel) rows.push({ kind: 'kernel', setup, kernel: `BatchMatMul:${s.name}`, calls: s.calls, ms: round(s.ms, 1), share: round(s.ms / refMs, 3) });
  return rows;
}

/** Fixed cost of one kernel call (a [1] add) and of one small tensor upload + dispose, in µs. */
export function overheadRows(): Row[] {
  const a = tf.tensor1d([1]);
  const b = tf.tensor1d([2]);
  const n = 2000;
  const per = (f: () => void): number =>
    median([0, 1, 2].map(() => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f();
      return ((performance.now() - t0) * 1000) / n;
    }));
  const add = per(() => tf.add(a, b).dispose());
  const mul3 = per(() => tf.tidy(() => tf.mul(tf.add(a, b), b)));
  const upload = per(() => tf.tensor1d([3]).dispose());
  const x = tf.randomNormal([2560, 256], 0, 1, 'float32', 7);
  const bigAdd = per(() => tf.add(x, x).dispose());
  for (const t of [a, b, x]) t.dispose();
  return [
    { kind: 'overhead', what: 'add [1]+[1] (one kernel call, dispose)', us: round(add, 1) },
    { kind: 'overhead', what: 'tidy(add, mul) on [1] (per kernel)', us: round(mul3 / 2, 1) },
    { kind: 'overhead', what: 'tensor1d upload + dispose', us: round(upload, 1) },
    { kind: 'overhead', what: 'add [2560,256] (bandwidth-bound elementwise)', us: round(bigAdd, 1) },
  ];
}

// ---- the setups -------------------------------------------------------------------------------------

export interface SetupSpec {
  name: string;
  quant: 'int8' | 'none';
  targets: string[];
  B: number;
  maxLength: number;
  dropout: number;
  /** 'answer': answer-only labels (the trainer's). 'all': every position a target (issue 7). */
  labels: 'answer' | 'all';
  parts: boolean;
}

export const SETUPS: SetupSpec[] = [
  { name: 'auditor-int8', quant: 'int8', targets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'], B: 8, maxLength: 320, dropout: 0, labels: 'answer', parts: true },
  { name: 'auditor-float', quant: 'none', targets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'], B: 8, maxLength: 320, dropout: 0, labels: 'answer', parts: false },
  { name: 'issue7-float', quant: 'none', targets: ['qkv_proj', 'o_proj'], B: 4, maxLength: 256, dropout: 0.05, labels: 'all', parts: true },
];

/** A batch of `B` real samples of similar length (as the trainer's by-length batches are). */
function makeBatch(spec: SetupSpec, samples: readonly Sample[], tok: Phi3Tokenizer): Batch {
  let enc: EncodedSample[] = samples.map((s) => encodeSample(s, tok, { maxLength: spec.maxLength, truncation: spec.labels === 'all' ? 'right' : 'prompt' }));
  if (spec.labels === 'all') {
    enc = enc.filter((e) => e.ids.length === spec.maxLength).map((e) => ({ ...e, labels: new Uint8Array(e.ids.length).fill(1) }));
    return collate(enc, enc.slice(0, spec.B).map((_, i) => i), PHI3_PAD_ID);
  }
  const order = enc.map((_, i) => i).sort((a, b) => enc[a]!.ids.length - enc[b]!.ids.length);
  const mid = Math.max(0, Math.floor(order.length / 2) - Math.floor(spec.B / 2));
  return collate(enc, order.slice(mid, mid + spec.B), PHI3_PAD_ID);
}

export interface Built {
  model: Phi3ForCausalLM;
  batch: Batch;
  vars: ReturnType<typeof namedLoraVariables>;
  opt: AdamW;
  step: () => void;
  fwdBwd: () => void;
}

export function build(spec: SetupSpec, samples: readonly Sample[], tok: Phi3Tokenizer): Built {
  const model = loadPhi3(BASE_DIR, { quant: spec.quant });
  const lora = defineLoraConfig({ r: 16, loraAlpha: 32, loraDropout: spec.dropout, targetModules: spec.targets });
  attachLora(model, lora, new Rng(42).split('lora'));
  setLoraTraining(model, true);
  const batch = makeBatch(spec, samples, tok);
  const vars = namedLoraVariables(model);
  const opt = new AdamW(vars, { weightDecay: 0 });
  const lossFn = answerLoss(model);
  const rng = new Rng(42).split('dropout');
  const v = vars.map(([, x]) => x);
  const grads = (): tf.Tensor[] => {
    const { value, grads: g } = tf.variableGrads(() => lossFn(batch, { training: true, rng }), v);
    value.dataSync();
    return v.map((x) => g[x.name]!);
  };
  return {
    model, batch, vars, opt,
    fwdBwd: () => grads(),
    step: () => {
      const c = clipGradNorm(grads(), 1.0);
      opt.apply(c.grads, 1e-4);
    },
  };
}

// ---- parts, each timed alone on the step's shapes ---------------------------------------------------

/** fwd ms and fwd+bwd ms of f(...inputs) (gradients to every input; dy made once, outside the timing). */
function fwdBwdMs(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): { fwd: number; both: number } {
  const fwd = timeMs(() => f(...inputs));
  const shape = tf.tidy(() => f(...inputs).shape);
  const dy = tf.ones(shape);
  try {
    const both = timeMs(() => tf.grads((...xs: tf.Tensor[]) => f(...xs))(inputs, dy));
    return { fwd, both };
  } finally {
    dy.dispose();
  }
}

function partRows(setup: SetupSpec, b: Built, stepMs: number): Row[] {
  const { model, batch } = b;
  const c = model.config;
  const { B, T } = batch;
  const N = B * T;
  const D = c.hiddenSize;
  const L = c.numHiddenLayers;
  const hd = headDim(c);
  const H = c.numAttentionHeads;
  const rows: Row[] = [];
  const push = (part: string, calls: number, t: { fwd: number; both: number }, note = '') => {
    const total = calls * t.both;
    rows.push({ kind: 'part', setup: setup.name, part, calls, fwd_ms: round(t.fwd), bwd_ms: round(t.both - t.fwd), per_step_ms: round(total, 1), share: round(total / stepMs, 3), ...(note !== '' ? { note } : {}) });
    return total;
  };
  const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  const x = rnd([N, D], 1);
  const keep: tf.Tensor[] = [x];
  let sum = 0;
  try {
    const emb = timeMs(() => model.embedTokens.forward(batch.ids));
    sum += push('embedding lookup', 1, { fwd: emb, both: emb }, 'frozen: no backward');
    const w = model.layers[0]!.inputLayernorm.weight;
    sum += push('rmsnorm [N,D]', 2 * L, fwdBwdMs((xi) => rmsNorm(xi as tf.Tensor2D, w, c.rmsNormEps), [x]));
    // Projections: the frozen base alone, then the LoRA wrapper's extra (its add, dropout mask, A/B matmuls).
    for (const [name, lin] of loraLayers(model).filter(([n]) => n.startsWith('model.layers.0.'))) {
      const short = name.split('.').pop()!;
      const xi = lin.inFeatures === D ? x : rnd([N, lin.inFeatures], 2);
      if (xi !== x) keep.push(xi);
      const base = fwdBwdMs((t) => lin.base.apply(t as tf.Tensor2D), [xi]);
      sum += push(`${short} base (${lin.base.kind}) [${lin.outFeatures}x${lin.inFeatures}]`, L, base, lin.base instanceof Int8Linear ? `threshold ${lin.base.threshold}` : '');
      const delta = makeLoraDelta(lin.scaling);
      const y0 = tf.zeros([N, lin.outFeatures]); // stands for the base output the branch is added to
      keep.push(y0);
      const branch = fwdBwdMs((t, a, bb) => tf.add(y0, delta(t, a!, bb!)), [xi, lin.loraA, lin.loraB]);
      sum += push(`${short} LoRA branch r${lin.r}`, L, branch, 'delta op (x·Aᵀ·Bᵀ·s) + the add');
      if (lin.loraDropout > 0) {
        const mask = timeMs(() => {
          const m = new Float32Array(xi.size);
          const rng = new Rng(1);
          for (let i = 0; i < m.length; i++) m[i] = rng.uniform() < lin.loraDropout ? 0 : 1 / (1 - lin.loraDropout);
          return tf.mul(xi, tf.tensor2d(m, xi.shape as [number, number]));
        });
        sum += push(`${short} LoRA dropout mask (JS Rng, ${xi.size} draws)`, L, { fwd: mask, both: mask });
      }
    }
    const pos = positionsFromMask(batch.attentionMask, B, T).positions;
    const keyMask = Array.from({ length: B }, (_, r) => Uint8Array.from(batch.attentionMask.subarray(r * T, (r + 1) * T)));
    const bias = tf.tensor4d(attentionBias(keyMask, T, 0, c.slidingWindow), [B, 1, T, T]);
    const q = rnd([B, H, T, hd], 3);
    const k = rnd([B, c.numKeyValueHeads, T, hd], 4);
    const v = rnd([B, c.numKeyValueHeads, T, hd], 5);
    keep.push(bias, q, k, v);
    const ropeT = timeMs(() => ropeTables(pos, B, T, hd, c.ropeTheta));
    sum += push('rope tables (JS, per forward)', 1, { fwd: ropeT, both: ropeT });
    const rope = ropeTables(pos, B, T, hd, c.ropeTheta);
    keep.push(rope.cos, rope.sinS);
    sum += push('rope apply [B,H,T,hd]', 2 * L, fwdBwdMs((t) => applyRope(t as tf.Tensor4D, rope), [q]));
    sum += push(`attention (${tf.getBackend() === 'wasm' && T >= 8 ? 'grouped' : 'batched'})`, L, fwdBwdMs((a, bb, cc) => attention(a as tf.Tensor4D, bb as tf.Tensor4D, cc as tf.Tensor4D, { scale: 1 / Math.sqrt(hd), bias }), [q, k, v]));
    const gu = rnd([N, 2 * c.intermediateSize], 6);
    keep.push(gu);
    sum += push('swiglu [N,2I]', L, fwdBwdMs((t) => swiglu(t as tf.Tensor2D), [gu]));
    // One whole decoder layer: what the parts above leave out is glue (split, reshape, transpose, residual add).
    const ctx: Parameters<(typeof model.layers)[number]['forward']>[1] = { B, T, rope, bias };
    const layer = fwdBwdMs((t) => model.layers[0]!.forward(t as tf.Tensor2D, ctx), [x]);
    rows.push({ kind: 'part', setup: setup.name, part: 'one decoder layer (whole, for the glue)', calls: L, fwd_ms: round(layer.fwd), bwd_ms: round(layer.both - layer.fwd), per_step_ms: round(L * layer.both, 1), share: round((L * layer.both) / stepMs, 3) });
    // lm_head + cross-entropy at the target rows (the trainer's fused path), with the row gather and final norm.
    const tg = targetsFromMask(batch.ids, batch.labels, B, T, { attentionMask: batch.attentionMask });
    const head = fwdBwdMs((h) => linearCrossEntropy(model.norm.forward(gatherRows(h as tf.Tensor2D, tg.rows)), model.lmHead, tg.targets), [x]);
    sum += push(`lm_head+CE at ${tg.rows.length} target rows (${model.lmHead.kind} head)`, 1, head, `V=${c.vocabSize}, gather + final norm included`);
    if (model.lmHead.kind !== 'float') {
      const w = model.lmHead.weight();
      const floatHead = new FloatLinear(w.dataSync() as Float32Array, model.lmHead.outFeatures, model.lmHead.inFeatures);
      w.dispose();
      const alt = fwdBwdMs((h) => linearCrossEntropy(model.norm.forward(gatherRows(h as tf.Tensor2D, tg.rows)), floatHead, tg.targets), [x]);
      floatHead.dispose();
      rows.push({ kind: 'part', setup: setup.name, part: 'ALT: lm_head+CE with a cached float head', calls: 1, fwd_ms: round(alt.fwd), bwd_ms: round(alt.both - alt.fwd), per_step_ms: round(alt.both, 1), share: round(alt.both / stepMs, 3), note: 'not in Σ' });
    }
    // Optimizer: global-norm clip + AdamW over every adapter variable.
    const grads = b.vars.map(([, vv]) => tf.keep(tf.randomNormal(vv.shape, 0, 1e-3, 'float32', 9)));
    keep.push(...grads);
    const optMs = timeMs(() => {
      const cl = clipGradNorm(grads.map((g) => tf.clone(g)), 1.0);
      b.opt.apply(cl.grads, 1e-4);
    });
    sum += push(`clip + AdamW (${b.vars.length} variables)`, 1, { fwd: optMs, both: optMs });
    rows.push({ kind: 'part', setup: setup.name, part: 'Σ parts (excl. whole layer) vs measured step', calls: 0, per_step_ms: round(sum, 1), share: round(sum / stepMs, 3), note: `rest ${round(stepMs - sum, 1)} ms = glue + autograd tape + loss bookkeeping` });
  } finally {
    for (const t of keep) t.dispose();
  }
  return rows;
}

/** Int8 projections: as loaded (mixed, threshold 6) vs weight-only int8 vs a cached float copy, and the JS prep per call. */
function int8Rows(model: Phi3ForCausalLM, N: number): Row[] {
  const rows: Row[] = [];
  const layers: Array<[string, Linear, number]> = loraLayers(model).filter(([n]) => n.startsWith('model.layers.0.')).map(([n, l]) => [n, l.base, N]);
  layers.push(['lm_head', model.lmHead, Math.max(16, Math.floor((1 << 23) / model.config.vocabSize))]); // one CE chunk of rows
  for (const [name, base, N] of layers) {
    if (!(base instanceof Int8Linear)) continue;
    const x = tf.randomNormal([N, base.inFeatures], 0, 1, 'float32', 11);
    const float = new FloatLinear(dequantizeInt8(base.q), base.outFeatures, base.inFeatures);
    const wo = new Int8Linear(base.q, { threshold: 0 });
    const t = (l: Linear) => fwdBwdMs((xi) => l.apply(xi as tf.Tensor2D), [x]);
    const [mixed, weightOnly, cached] = [t(base), t(wo), t(float)];
    const codes = timeMs(() => tf.tensor2d(int8CodesChunk(base.q, 0, base.inFeatures), base.q.shape));
    const deq = timeMs(() => tf.tensor2d(dequantizeInt8(base.q), base.q.shape));
    rows.push({
      kind: 'int8', module: name.split('.').pop()!, shape: `${base.outFeatures}x${base.inFeatures}`, N,
      mixed_fwd_ms: round(mixed.fwd), mixed_fwdbwd_ms: round(mixed.both), weightonly_fwdbwd_ms: round(weightOnly.both),
      float_cached_fwd_ms: round(cached.fwd), float_cached_fwdbwd_ms: round(cached.both),
      js_codes_upload_ms: round(codes), js_dequant_upload_ms: round(deq), speedup_cached: round(mixed.both / cached.both),
    });
    float.dispose();
    x.dispose();
  }
  return rows;
}

/** LoRA fused into the base matmul: x·Wt and x·At as two matmuls vs one x·[Wt | At]. */
function fusionRows(N: number, D: number, outs: number[], r: number): Row[] {
  return outs.map((out) => {
    const x = tf.randomNormal([N, D], 0, 1, 'float32', 12);
    const wt = tf.randomNormal([D, out], 0, 1, 'float32', 13);
    const at = tf.randomNormal([D, r], 0, 1, 'float32', 14);
    const cat = tf.concat([wt, at], 1);
    const two = timeMs(() => [tf.matMul(x, wt), tf.matMul(x, at)]);
    const one = timeMs(() => tf.matMul(x, cat));
    for (const t of [x, wt, at, cat]) t.dispose();
    return { kind: 'fusion', what: `x[${N}x${D}]·Wt[${D}x${out}] + x·At[${D}x${r}]`, separate_ms: round(two), fused_ms: round(one), saved_ms: round(two - one) };
  });
}

export async function run(): Promise<Row[]> {
  if (tf.getBackend() !== 'wasm') await initBackend({ backend: 'wasm' });
  const wanted = (process.env.BENCH_TRAIN_SETUPS ?? '').split(',').filter((s) => s !== '');
  const { train, tok } = await auditorSamples();
  const rows: Row[] = [machineRow('start'), ...overheadRows()];
  for (const spec of SETUPS.filter((s) => wanted.length === 0 || wanted.includes(s.name))) {
    process.stderr.write(`[bench] train: ${spec.name}\n`);
    const b = build(spec, train, tok);
    try {
      const stepMs = timeMs(b.step);
      const fbMs = timeMs(b.fwdBwd, Math.max(1, reps() - 1));
      const { B, T, tokens, targets } = b.batch;
      rows.push({
        kind: 'step', setup: spec.name, quant: spec.quant, lora_targets: spec.targets.join('+'), B, T, tokens, targets,
        step_ms: round(stepMs, 1), fwd_bwd_ms: round(fbMs, 1), tokens_per_s: round((tokens * 1000) / stepMs, 1),
        padded_tokens_per_s: round((B * T * 1000) / stepMs, 1), loadavg1: round(os.loadavg()[0]!),
      });
      const c = b.model.config;
      const proj: Array<[string, number, number]> = loraLayers(b.model).filter(([n]) => n.startsWith('model.layers.0.')).map(([n, l]) => [n.split('.').pop()!, l.outFeatures, l.inFeatures]);
      for (const [n, l] of b.model.linearNames().filter((n) => n.startsWith('model.layers.0.')).map((n) => [n, b.model.getLinear(n)] as const)) {
        if (!(l instanceof LoraLinear)) proj.push([n.split('.').pop()!, l.outFeatures, l.inFeatures]);
      }
      const prof = await profileKernels(b.step, matmulLabeler({ V: c.vocabSize, r: 16, proj }));
      rows.push(...profileRows(spec.name, prof, stepMs));
      if (spec.parts) {
        rows.push(...partRows(spec, b, stepMs));
        if (spec.quant === 'int8') rows.push(...int8Rows(b.model, B * T));
        if (spec.name === 'auditor-int8') rows.push(...fusionRows(B * T, c.hiddenSize, [3 * c.hiddenSize, 2 * c.intermediateSize], 16));
      }
    } finally {
      b.opt.dispose();
      b.model.dispose();
    }
  }
  rows.push(machineRow('end'));
  return rows;
}
