/**
 * Batched greedy generation profile (issue 4's evaluation: `npm start` generates 200 answers at batch
 * 16 twice, base alone and base + adapter). Real auditor prompts on the shipped models/phi3-nano.
 *
 * Setups: int8+lora (the adapter evaluation: LoRA r16 on all four projections, unmerged), int8 (the base
 * evaluation), float+lora (the same with dequantized, cached float weights). For batch 1, 16, 32 and
 * NEW new tokens: prefill ms (the prompt through the model with the KV cache), the median decode step,
 * tokens/s. Rows `decode-part` time each piece of one decode step alone (× calls per step); `kernels`
 * / `kernel` come from tf.profile of one decode step. One `generate()` call (batch 16) checks that the
 * hand loop's speed is the product's.
 */
import os from 'node:os';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { sampleMessages } from '../src/data/tokens.ts';
import { loadPhi3 } from '../src/model/checkpoint.ts';
import { headDim } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { makeLoraDelta } from '../src/model/lora/layer.ts';
import { attachLora, loraLayers } from '../src/model/lora/model.ts';
import { attention } from '../src/kernels/attention.ts';
import { FloatLinear } from '../src/kernels/float-linear.ts';
import { Int8Linear } from '../src/kernels/int8-linear.ts';
import { rmsNorm } from '../src/kernels/rmsnorm.ts';
import { applyRope, ropeTables } from '../src/kernels/rope.ts';
import { swiglu } from '../src/kernels/swiglu.ts';
import { Rng } from '../src/util/random.ts';
import { BASE_DIR, auditorSamples, machineRow, matmulLabeler, median, profileKernels, profileRows, round, timeMs, type Row } from './train.ts';

const NEW = 64;
const BATCHES = [1, 16, 32];

function argmaxRows(data: Float32Array, B: number, V: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (data[b * V + v]! > data[b * V + best]!) best = v;
    out.push(best);
  }
  return out;
}

/** Prefill + NEW − 1 decode steps (greedy, no stop ids), as generate() runs them; per-step times. */
function decodeRun(model: Phi3ForCausalLM, prompts: number[][]): { prefillMs: number; stepMs: number[] } {
  const B = prompts.length;
  const V = model.config.vocabSize;
  const cache = model.createCache(B);
  try {
    const t0 = performance.now();
    const fwd = (ids: number[][], mask: number[][]): number[] => {
      const logits = tf.tidy(() => model.forward(ids, { attentionMask: mask, cache, lastOnly: true }));
      const d = logits.dataSync() as Float32Array;
      logits.dispose();
      return argmaxRows(d, B, V);
    };
    let tok = fwd(prompts, prompts.map((p) => p.map(() => 1)));
    const prefillMs = performance.now() - t0;
    const stepMs: number[] = [];
    for (let n = 1; n < NEW; n++) {
      const s = performance.now();
      tok = fwd(tok.map((t) => [t]), tok.map(() => [1]));
      stepMs.push(performance.now() - s);
    }
    return { prefillMs, stepMs };
  } finally {
    cache.dispose();
  }
}

/** Each piece of one decode step at batch B and cache length S, alone; × calls per step. */
function decodeParts(setup: string, model: Phi3ForCausalLM, B: number, S: number, stepMs: number): Row[] {
  const c = model.config;
  const D = c.hiddenSize;
  const L = c.numHiddenLayers;
  const hd = headDim(c);
  const rows: Row[] = [];
  let sum = 0;
  const push = (part: string, calls: number, ms: number, note = '', inSum = true) => {
    if (inSum) sum += calls * ms;
    rows.push({ kind: 'decode-part', setup, B, S, part, calls, ms: round(ms, 3), per_step_ms: round(calls * ms, 2), share: round((calls * ms) / stepMs, 3), ...(note !== '' ? { note } : {}) });
  };
  const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  const keep: tf.Tensor[] = [];
  const T = (t: tf.Tensor) => (keep.push(t), t);
  try {
    const x = T(rnd([B, D], 1)) as tf.Tensor2D;
    push('embedding lookup', 1, timeMs(() => model.embedTokens.forward(new Int32Array(B).fill(5))));
    push('rmsnorm [B,D]', 2 * L + 1, timeMs(() => rmsNorm(x, model.norm.weight, c.rmsNormEps)));
    const lin = new Map(model.linearNames().filter((n) => n.startsWith('model.layers.0.')).map((n) => [n.split('.').pop()!, model.getLinear(n)] as const));
    for (const [name, l] of lin) {
      const wrapped = loraLayers(model).find(([n]) => n.endsWith(`layers.0.self_attn.${name}`) || n.endsWith(`layers.0.mlp.${name}`))?.[1];
      const base = wrapped?.base ?? l;
      const xi = base.inFeatures === D ? x : (T(rnd([B, base.inFeatures], 2)) as tf.Tensor2D);
      push(`${name} base (${base.kind}${base instanceof Int8Linear ? `, threshold ${base.threshold}` : ''})`, L, timeMs(() => base.apply(xi)));
      if (base instanceof Int8Linear) {
        const w = base.weight();
        const f = new FloatLinear(w.dataSync() as Float32Array, base.outFeatures, base.inFeatures);
        w.dispose();
        push(`ALT: ${name} as a cached float weight`, L, timeMs(() => f.apply(xi)), 'not in Σ', false);
        f.dispose();
      }
      if (wrapped !== undefined) {
        const delta = makeLoraDelta(wrapped.scaling);
        push(`${name} LoRA branch`, L, timeMs(() => tf.add(tf.zeros([B, base.outFeatures]), delta(xi, wrapped.loraA, wrapped.loraB))));
      }
    }
    const H = c.numAttentionHeads;
    const KV = c.numKeyValueHeads;
    const pos = new Int32Array(B).fill(S);
    push('rope tables + apply q,k', L, timeMs(() => {
      const r = ropeTables(pos, B, 1, hd, c.ropeTheta);
      return [applyRope(rnd([B, H, 1, hd], 3) as tf.Tensor4D, r), applyRope(rnd([B, KV, 1, hd], 4) as tf.Tensor4D, r)];
    }), 'tables built per layer here; once per forward in the model');
    const q = T(rnd([B, H, 1, hd], 3)) as tf.Tensor4D;
    const k = T(rnd([B, KV, S, hd], 4)) as tf.Tensor4D;
    const v = T(rnd([B, KV, S, hd], 5)) as tf.Tensor4D;
    const bias = T(tf.zeros([B, 1, 1, S])) as tf.Tensor4D;
    push(`attention over S=${S} (batched)`, L, timeMs(() => attention(q, k, v, { scale: 1 / Math.sqrt(hd), bias })));
    const kNew = T(rnd([B, KV, 1, hd], 6));
    push('KV cache append (concat k and v)', L, timeMs(() => [tf.concat([k, kNew], 2), tf.concat([v, kNew], 2)]), 'copies the whole cache each step');
    const gu = T(rnd([B, 2 * c.intermediateSize], 7)) as tf.Tensor2D;
    push('swiglu', L, timeMs(() => swiglu(gu)));
    const head = model.lmHead;
    push(`lm_head [B,D]·[D,V] (${head.kind}${head instanceof Int8Linear ? `, threshold ${head.threshold}` : ''})`, 1, timeMs(() => head.apply(x)));
    if (head.kind !== 'float') {
      const w = head.weight();
      const f = new FloatLinear(w.dataSync() as Float32Array, head.outFeatures, head.inFeatures);
      w.dispose();
      push('ALT: lm_head as a cached float weight', 1, timeMs(() => f.apply(x)), 'not in Σ', false);
      f.dispose();
    }
    const logits = T(rnd([B, c.vocabSize], 8));
    push('logits download + JS argmax', 1, timeMs(() => void argmaxRows(logits.dataSync() as Float32Array, B, c.vocabSize)));
    push('Σ parts vs measured decode step', 0, 0, `Σ ${round(sum, 1)} ms of ${round(stepMs, 1)} ms; rest = glue (split/reshape/transpose), masks, bookkeeping`, false);
  } finally {
    for (const t of keep) t.dispose();
  }
  return rows;
}

export async function run(): Promise<Row[]> {
  if (tf.getBackend() !== 'wasm') await initBackend({ backend: 'wasm' });
  const { train, test, tok } = await auditorSamples();
  const prompts = [...test, ...train].map((s) => tok.encodeChat(sampleMessages({ ...s, answer: '' }).slice(0, 2), { addGenerationPrompt: true }));
  const rows: Row[] = [machineRow('start')];
  const setups = [
    { name: 'int8+lora', quant: 'int8' as const, lora: true },
    { name: 'int8', quant: 'int8' as const, lora: false },
    { name: 'float+lora', quant: 'none' as const, lora: true },
  ].filter((s) => (process.env.BENCH_GEN_SETUPS ?? '') === '' || process.env.BENCH_GEN_SETUPS!.split(',').includes(s.name));
  for (const s of setups) {
    process.stderr.write(`[bench] generate: ${s.name}\n`);
    const model = loadPhi3(BASE_DIR, { quant: s.quant });
    try {
      if (s.lora) attachLora(model, defineLoraConfig({ r: 16, loraAlpha: 32, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] }), new Rng(42).split('lora'));
      decodeRun(model, prompts.slice(0, 2).map((p) => p.slice(0, 16))); // warm-up
      for (const B of BATCHES) {
        const batch = prompts.slice(0, B);
        // Equal lengths (the shortest prompt of the batch), so no row is padded: the measured cost is the model's.
        const len = Math.min(...batch.map((p) => p.length));
        const r = decodeRun(model, batch.map((p) => p.slice(0, len)));
        const step = median(r.stepMs);
        const totalMs = r.prefillMs + r.stepMs.reduce((a, b) => a + b, 0);
        rows.push({
          kind: 'generate', setup: s.name, B, prompt_tokens: len, new_tokens: NEW, prefill_ms: round(r.prefillMs, 1), prefill_tokens_per_s: round((B * len * 1000) / r.prefillMs, 1),
          decode_step_ms: round(step, 2), decode_tokens_per_s: round((B * 1000) / step, 1), total_ms: round(totalMs, 1), tokens_per_s: round((B * NEW * 1000) / totalMs, 1),
          loadavg1: round(os.loadavg()[0]!),
        });
        if (B === 16 && s.name === 'int8+lora') {
          const S = len + NEW / 2;
          const cache = model.createCache(B);
          let label = matmulLabeler({ V: model.config.vocabSize, r: 16, proj: [] });
          try {
            tf.tidy(() => void model.forward(batch.map((p) => p.slice(0, len)), { cache, lastOnly: true }).dataSync());
            for (let n = len; n < S; n++) tf.tidy(() => void model.forward(batch.map(() => [5]), { cache, lastOnly: true }).dataSync());
            const proj: Array<[string, number, number]> = model.linearNames().filter((n) => n.startsWith('model.layers.0.')).map((n) => [n.split('.').pop()!, model.getLinear(n).outFeatures, model.getLinear(n).inFeatures]);
            label = matmulLabeler({ V: model.config.vocabSize, r: 16, proj });
            const prof = await profileKernels(() => void model.forward(batch.map(() => [5]), { cache, lastOnly: true }).dataSync(), label);
            rows.push(...profileRows(`decode ${s.name} B=${B} S=${S}`, prof, step));
          } finally {
            cache.dispose();
          }
          rows.push(...decodeParts(s.name, model, B, S, step));
          // The product's own loop (generate: greedy, no stop ids), for the end-to-end figure.
          const t0 = performance.now();
          generate(model, batch.map((p) => p.slice(0, len)), { maxNewTokens: NEW, greedy: true, stopIds: [] });
          const ms = performance.now() - t0;
          rows.push({ kind: 'generate', setup: `${s.name} via generate()`, B, prompt_tokens: len, new_tokens: NEW, total_ms: round(ms, 1), tokens_per_s: round((B * NEW * 1000) / ms, 1) });
        }
      }
    } finally {
      model.dispose();
    }
  }
  rows.push(machineRow('end'));
  return rows;
}
