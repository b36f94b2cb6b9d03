/**
 * Native matmul (src/backend/native.ts: OpenBLAS through the N-API addon in native/) against the wasm
 * backend's own kernel, in the same process, runs interleaved so both see the same machine load.
 *
 * Rows (kind):
 *   `native`    — whether the addon loaded, its BLAS, threads, the size threshold.
 *   `matmul`    — GFLOP/s of the phi3-nano training step's products (lm_head both orientations,
 *                 projections, attention), native vs wasm, for each transpose combination used.
 *   `crossover` — small square products, to place the native size threshold (minMacs).
 *   `int8`      — weight-only int8 linears (lm_head, projections): today's Int8Linear (dequantize in JS,
 *                 upload, float matmul) on wasm and with the native BatchMatMul, the native int8 op
 *                 (no float W anywhere), and sgemm on a cached float W, forward and input gradient.
 *   `step`      — one LoRA training step (forward + backward + clip + AdamW) native vs wasm, with the
 *                 loss and largest relative gradient difference between the two paths.
 *   `machine`   — os.loadavg() at start and end (the machine is shared: read the ratios, not the ms).
 * BENCH_REPS (default 3) timed runs after one warm-up, medians. BENCH_NATIVE_PARTS=matmul,crossover,int8,step
 * picks parts; BENCH_NATIVE_SETUPS=issue7-float,auditor-float,auditor-int8 picks step setups.
 * Without the addon the section prints the `native` row saying why, and nothing else.
 */
import os from 'node:os';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { installNativeKernels, nativeStatus, resetNativeCounters, setNativeEnabled, setNativeMinMacs } from '../src/backend/native.ts';
import type { Sample } from '../src/data/sample.ts';
import { loadPhi3 } from '../src/model/checkpoint.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { attachLora, loraLayers, setLoraTraining } from '../src/model/lora/model.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { AdamW, answerLoss, clipGradNorm, collate, encodeSample, namedLoraVariables, type Batch, type EncodedSample } from '../src/train/index.ts';
import type { Phi3Tokenizer } from '../src/tokenizer/index.ts';
import { PHI3_PAD_ID } from '../src/tokenizer/index.ts';
import { Rng, type RngState } from '../src/util/random.ts';
import { int8MatMul, int8MatMulT } from '../src/backend/native-quant.ts';
import { Int8Linear } from '../src/kernels/int8-linear.ts';
import { auditorSamples, BASE_DIR, machineRow, median, reps, round, type Row } from './train.ts';

const parts = (): string[] => (process.env.BENCH_NATIVE_PARTS ?? 'matmul,crossover,int8,step').split(',').filter((s) => s !== '');

/** Median ms of `fn` under native and under wasm, alternating the two so load drifts hit both alike. */
function timePair(fn: () => void, n = reps()): { native: number; wasm: number } {
  const once = (on: boolean): number => {
    setNativeEnabled(on);
    const t0 = performance.now();
    tf.tidy(fn);
    return performance.now() - t0;
  };
  once(true);
  once(false);
  const t: { native: number[]; wasm: number[] } = { native: [], wasm: [] };
  for (let i = 0; i < n; i++) {
    // Alternate which goes first: the one after a long run sometimes finds caches or the core warmer.
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const on of order) (on ? t.native : t.wasm).push(once(on));
  }
  setNativeEnabled(true);
  return { native: median(t.native), wasm: median(t.wasm) };
}

interface Shape {
  what: string;
  a: number[];
  b: number[];
  ta?: boolean;
  tb?: boolean;
}

/** The nano step's products: N rows of activations, V vocabulary, D hidden, I intermediate. */
function stepShapes(N: number, c: number, D: number, I: number, V: number, heads: number, T: number, hd: number, B: number): Shape[] {
  const BH = B * heads;
  return [
    { what: `lm_head fwd h·Wt [${c}×${D}]·[${D}×${V}]`, a: [c, D], b: [D, V] },
    { what: 'lm_head fwd h·Wᵀ (transposeB, W [V, D])', a: [c, D], b: [V, D], tb: true },
    { what: `lm_head dh dl·W [${c}×${V}]·[${V}×${D}]`, a: [c, V], b: [V, D] },
    { what: 'lm_head dh dl·Wtᵀ (transposeB, Wt [D, V])', a: [c, V], b: [D, V], tb: true },
    { what: `lm_head dW hᵀ·dl (transposeA) [${D}×${c}]·[${c}×${V}]`, a: [c, D], b: [c, V], ta: true },
    { what: `qkv_proj x·Wt [${N}×${D}]·[${D}×${3 * D}]`, a: [N, D], b: [D, 3 * D] },
    { what: `o_proj x·Wt [${N}×${D}]·[${D}×${D}]`, a: [N, D], b: [D, D] },
    { what: `gate_up_proj x·Wt [${N}×${D}]·[${D}×${2 * I}]`, a: [N, D], b: [D, 2 * I] },
    { what: `down_proj x·Wt [${N}×${I}]·[${I}×${D}]`, a: [N, I], b: [I, D] },
    { what: `gate_up_proj dx dy·Wtᵀ (transposeB) [${N}×${2 * I}]·[${D}×${2 * I}]ᵀ`, a: [N, 2 * I], b: [D, 2 * I], tb: true },
    { what: `attention scores q·kᵀ [${BH}×${T}×${hd}]·[${BH}×${T}×${hd}]ᵀ`, a: [BH, T, hd], b: [BH, T, hd], tb: true },
    { what: `attention p·v [${BH}×${T}×${T}]·[${BH}×${T}×${hd}]`, a: [BH, T, T], b: [BH, T, hd] },
    { what: `LoRA x·A [${N}×${D}]·[${D}×16]`, a: [N, D], b: [D, 16] },
  ];
}

function matmulRows(shapes: Shape[], kind: string): Row[] {
  const rng = new Rng(7).split('bench-native');
  const rows: Row[] = [];
  for (const s of shapes) {
    const a = tf.tensor(rng.fillUniform(new Float32Array(s.a.reduce((p, x) => p * x, 1)), -1, 1), s.a);
    const b = tf.tensor(rng.fillUniform(new Float32Array(s.b.reduce((p, x) => p * x, 1)), -1, 1), s.b);
    try {
      const out = tf.tidy(() => tf.matMul(a, b, s.ta, s.tb).shape);
      const k = s.ta === true ? s.a[s.a.length - 2]! : s.a[s.a.length - 1]!;
      const flop = 2 * out.reduce((p, x) => p * x, 1) * k;
      // Small products need many calls for a stable median: repeat inside one timing.
      const inner = Math.max(1, Math.min(200, Math.round(2e8 / flop)));
      const t = timePair(() => {
        for (let i = 0; i < inner; i++) tf.matMul(a, b, s.ta, s.tb).dispose();
      });
      const gf = (ms: number): number => round((flop * inner) / ms / 1e6, 1);
      rows.push({
        kind, what: s.what, a: s.a.join('x'), b: s.b.join('x'), transposeA: String(s.ta === true), transposeB: String(s.tb === true),
        mflop: round(flop / 1e6, 2), native_ms: round(t.native / inner, 3), wasm_ms: round(t.wasm / inner, 3),
        native_gflops: gf(t.native), wasm_gflops: gf(t.wasm), speedup: round(t.wasm / t.native, 2),
      });
    } finally {
      a.dispose();
      b.dispose();
    }
  }
  return rows;
}

// ---- int8 weight-only ---------------------------------------------------------------------------

function int8Rows(): Row[] {
  const rng = new Rng(11).split('bench-native-int8');
  const rows: Row[] = [];
  const cases: Array<[string, number, number, number]> = [
    ['lm_head (one CE chunk)', 261, 32064, 256],
    ['lm_head (decode, 16 rows)', 16, 32064, 256],
    ['gate_up_proj', 2160, 1536, 256],
    ['down_proj', 2160, 256, 768],
    ['Phi-3-mini qkv_proj (128 tokens)', 128, 9216, 3072],
  ];
  for (const [what, N, out, inF] of cases) {
    const lin = Int8Linear.fromFloat(rng.fillNormal(new Float32Array(out * inF), 0.05), out, inF, { threshold: 0 });
    const x = tf.tensor2d(rng.fillUniform(new Float32Array(N * inF), -1, 1), [N, inF]);
    const dy = tf.tensor2d(rng.fillUniform(new Float32Array(N * out), -1, 1), [N, out]);
    const wt = tf.tidy(() => tf.transpose(lin.weight())); // cached float Wt [in, out]
    const w = lin.weight(); // cached float W [out, in]
    try {
      const cur = timePair(() => lin.apply(x));
      const curB = timePair(() => lin.applyTransposed(dy));
      const op = timePair(() => int8MatMulT(x, lin.q));
      const opB = timePair(() => int8MatMul(dy, lin.q));
      const fl = timePair(() => tf.matMul(x, wt));
      const flB = timePair(() => tf.matMul(dy, w));
      rows.push({
        kind: 'int8', what, N, out, in: inF,
        int8linear_wasm_ms: round(cur.wasm, 2), int8linear_native_bmm_ms: round(cur.native, 2), native_int8_op_ms: round(op.native, 2),
        float_cached_wasm_ms: round(fl.wasm, 2), float_cached_native_ms: round(fl.native, 2),
        bwd_int8linear_wasm_ms: round(curB.wasm, 2), bwd_int8linear_native_bmm_ms: round(curB.native, 2), bwd_native_int8_op_ms: round(opB.native, 2),
        bwd_float_cached_wasm_ms: round(flB.wasm, 2), bwd_float_cached_native_ms: round(flB.native, 2),
        native_int8_op_gflops: round((2 * N * out * inF) / op.native / 1e6, 1),
      });
    } finally {
      tf.dispose([x, dy, wt, w]);
      lin.dispose();
    }
  }
  return rows;
}

// ---- training step -----------------------------------------------------------------------------

interface StepSpec {
  name: string;
  quant: 'int8' | 'none';
  targets: string[];
  B: number;
  maxLength: number;
  dropout: number;
  labels: 'answer' | 'all';
}

/** The setups of bench/train.ts (same recipes, batch selection and seeds). */
const STEP_SETUPS: StepSpec[] = [
  { name: 'issue7-float', quant: 'none', targets: ['qkv_proj', 'o_proj'], B: 4, maxLength: 256, dropout: 0.05, labels: 'all' },
  { name: 'auditor-float', quant: 'none', targets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'], B: 8, maxLength: 320, dropout: 0, labels: 'answer' },
  { name: 'auditor-int8', quant: 'int8', targets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'], B: 8, maxLength: 320, dropout: 0, labels: 'answer' },
];

function makeBatch(spec: StepSpec, samples: readonly Sample[], tok: Phi3Tokenizer): Batch {
  let enc: EncodedSample[] = samples.map((s) => encodeSample(s, tok, { maxLength: spec.maxLength, truncation: spec.labels === 'all' ? 'right' : 'prompt' }));
  if (spec.labels === 'all') {
    enc = enc.filter((e) => e.ids.length === spec.maxLength).map((e) => ({ ...e, labels: new Uint8Array(e.ids.length).fill(1) }));
    return collate(enc, enc.slice(0, spec.B).map((_, i) => i), PHI3_PAD_ID);
  }
  const order = enc.map((_, i) => i).sort((a, b) => enc[a]!.ids.length - enc[b]!.ids.length);
  const mid = Math.max(0, Math.floor(order.length / 2) - Math.floor(spec.B / 2));
  return collate(enc, order.slice(mid, mid + spec.B), PHI3_PAD_ID);
}

/**
 * Loss and gradients of one step with every dropout stream restarted (the model's, and each LoRA
 * layer's own), so both paths see the same masks.
 */
function lossAndGrads(model: Phi3ForCausalLM, batch: Batch, vars: tf.Variable[], streams: RngState[]): { loss: number; grads: Float32Array[] } {
  loraLayers(model).forEach(([, l], i) => l.setDropoutState(streams[i]!));
  const lossFn = answerLoss(model);
  const rng = new Rng(42).split('dropout');
  const { value, grads } = tf.variableGrads(() => lossFn(batch, { training: true, rng }), vars);
  const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array) };
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  return out;
}

const loraStreams = (model: Phi3ForCausalLM): RngState[] => loraLayers(model).map(([, l]) => l.dropoutState());

function stepRows(spec: StepSpec, samples: readonly Sample[], tok: Phi3Tokenizer): Row[] {
  const model = loadPhi3(BASE_DIR, { quant: spec.quant });
  let opt: AdamW | undefined;
  try {
    attachLora(model, defineLoraConfig({ r: 16, loraAlpha: 32, loraDropout: spec.dropout, targetModules: spec.targets }), new Rng(42).split('lora'));
    setLoraTraining(model, true);
    const batch = makeBatch(spec, samples, tok);
    const named = namedLoraVariables(model);
    const vars = named.map(([, v]) => v);
    const adam = (opt = new AdamW(named, { weightDecay: 0 }));
    // Agreement first (B is still zero-initialised: the A gradients are zero, so compare after one update).
    const lossFn = answerLoss(model);
    const rng = new Rng(42).split('dropout');
    const step = (): void => {
      const { value, grads } = tf.variableGrads(() => lossFn(batch, { training: true, rng }), vars);
      value.dataSync();
      const c = clipGradNorm(vars.map((v) => grads[v.name]!), 1.0);
      adam.apply(c.grads, 1e-4);
    };
    setNativeEnabled(false);
    tf.tidy(step); // one update so that every gradient is non-zero
    const streams = loraStreams(model);
    const ref = lossAndGrads(model, batch, vars, streams);
    setNativeEnabled(true);
    resetNativeCounters();
    const nat = lossAndGrads(model, batch, vars, streams);
    const calls = nativeStatus().calls;
    // Per variable: max |Δ| / max |g| (strict) and ‖Δ‖ / ‖g‖; the worst variable of each.
    let maxRel = 0;
    let normRel = 0;
    ref.grads.forEach((g, i) => {
      let num = 0;
      let den = 0;
      let n2 = 0;
      let d2 = 0;
      for (let j = 0; j < g.length; j++) {
        const d = g[j]! - nat.grads[i]![j]!;
        num = Math.max(num, Math.abs(d));
        den = Math.max(den, Math.abs(g[j]!));
        n2 += d * d;
        d2 += g[j]! * g[j]!;
      }
      maxRel = Math.max(maxRel, den > 0 ? num / den : num);
      normRel = Math.max(normRel, d2 > 0 ? Math.sqrt(n2 / d2) : Math.sqrt(n2));
    });
    const t = timePair(step);
    const { B, T, tokens, targets } = batch;
    return [{
      kind: 'step', setup: spec.name, quant: spec.quant, lora_targets: spec.targets.join('+'), B, T, tokens, targets,
      native_ms: round(t.native, 1), wasm_ms: round(t.wasm, 1), speedup: round(t.wasm / t.native, 2),
      native_tokens_per_s: round((tokens * 1000) / t.native, 1), wasm_tokens_per_s: round((tokens * 1000) / t.wasm, 1),
      loss_native: nat.loss, loss_wasm: ref.loss, grad_max_rel_diff: Number(maxRel.toExponential(2)), grad_norm_rel_diff: Number(normRel.toExponential(2)),
      loss_rel_diff: Number((Math.abs(nat.loss - ref.loss) / Math.abs(ref.loss)).toExponential(2)),
      native_calls: calls.native, fallback_calls: calls.fallback, loadavg1: round(os.loadavg()[0]!),
    }];
  } finally {
    setNativeEnabled(true);
    opt?.dispose();
    model.dispose();
  }
}

export async function run(): Promise<Row[]> {
  if (tf.getBackend() !== 'wasm') await initBackend({ backend: 'wasm' });
  const st = installNativeKernels();
  const rows: Row[] = [machineRow('start')];
  rows.push({
    kind: 'native', loaded: String(st.loaded), active: String(st.active), reason: st.reason ?? '', blas: st.blas ?? '',
    threads: st.threads ?? 0, min_macs: st.minMacs, cpus: os.cpus().length,
  });
  if (!st.active) return rows;
  const want = parts();
  if (want.includes('matmul')) {
    // issue7: B 4 × T 256 = 1024 rows; lm_head chunks of 261 rows (cross-entropy's default for V 32064).
    rows.push(...matmulRows(stepShapes(1024, 261, 256, 768, 32064, 8, 256, 32, 4), 'matmul'));
  }
  if (want.includes('crossover')) {
    // Every size through the addon here (threshold 0), to see where it stops paying.
    setNativeMinMacs(0);
    try {
      rows.push(...matmulRows([4, 8, 16, 24, 32, 48, 64, 96, 128, 192].map((n) => ({ what: `square ${n}`, a: [n, n], b: [n, n] })), 'crossover'));
      rows.push(...matmulRows([[64, 32, 64], [256, 32, 256], [256, 256, 32]].map(([m, k, n]) => ({ what: `attention-like ${m}×${k}·${k}×${n}`, a: [m!, k!], b: [k!, n!] })), 'crossover'));
    } finally {
      setNativeMinMacs(st.minMacs);
    }
  }
  if (want.includes('int8')) rows.push(...int8Rows());
  if (want.includes('step')) {
    const wanted = (process.env.BENCH_NATIVE_SETUPS ?? 'issue7-float,auditor-float').split(',').filter((s) => s !== '');
    const { train, tok } = await auditorSamples();
    for (const spec of STEP_SETUPS.filter((s) => wanted.includes(s.name))) {
      process.stderr.write(`[bench] native: step ${spec.name}\n`);
      rows.push(...stepRows(spec, train, tok));
    }
  }
  rows.push(machineRow('end'));
  return rows;
}
