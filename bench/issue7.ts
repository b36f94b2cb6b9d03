/**
 * Issue 7's scoreboard: one LoRA training step on phi3-nano against PyTorch, in the same run.
 *
 * The setup is issue 7's: the shipped phi3-nano (float), LoRA r=16/α=32, dropout 0.05 on qkv_proj and
 * o_proj, AdamW and gradient clipping on the adapter only, batch 4 × 256 tokens, every position a
 * target (bench/train.ts `issue7-float`, real auditor text). The PyTorch reference
 * (bench/torch_reference.py) trains the same architecture and shapes on the same token ids, with
 * torch's threads set to this run's thread count; it runs when a python3 that imports torch is found
 * (CLINILORA_PYTHON, else python3 on PATH, else /usr/bin/python3; Debian: `apt-get install
 * python3-torch`), and a row says so when none is.
 *
 * Rows (kind):
 *   `machine` — cores, SIMD, the fp32 peak estimates (src/backend/sysinfo.ts), load. The goal's
 *               FLOP-bound limit is the AVX2+FMA peak (cores × GHz × 32), the "about 156
 *               GFLOP/s": OpenBLAS's sgemm, the fastest kernel here, measures 137 at 512³ (2 threads)
 *               though its SkylakeX core has AVX-512, whose larger peak is reported beside it.
 *   `train`   — impl clinilora | pytorch: step ms (median of BENCH_REPS, default 5, after warm-up),
 *               tokens/s, GFLOP a step (counted from the shapes, below), GFLOP/s, share of peak.
 *   `goal`    — tokens/s over PyTorch's (goal ≥ 1.5) and share of the FLOP-bound limit (goal ≥ 0.5).
 *   `kernels` / `kernel` — tf.profile of one of our steps: where the time goes.
 * FLOP a step: forward 2·N·(every linear's in·out) + 2·n_targets·V·D for lm_head + attention
 * 4·B·H·T²·hd a layer; backward the input gradient of every linear and the head again (the base is
 * frozen: no weight gradient), 2× the attention, 2× LoRA's forward for its A, B and input gradients.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/backend/tf.ts';
import { currentBackend, initBackend } from '../src/backend/index.ts';
import { nativeStatus } from '../src/backend/native.ts';
import { peakEstimate, readCpuInfo } from '../src/backend/sysinfo.ts';
import { headDim, type PhiConfig } from '../src/model/config.ts';
import { auditorSamples, BASE_DIR, build, matmulLabeler, profileKernels, profileRows, round, SETUPS, timeMs, type Row } from './train.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GOAL_RATIO = 1.5;
const GOAL_SHARE = 0.5;
const reps = (): number => Math.max(1, Number(process.env.BENCH_REPS ?? 5));

/** FLOP of one LoRA training step (see the header). */
export function loraStepFlops(c: PhiConfig, B: number, T: number, targets: number, lora: { r: number; modules: Array<[number, number]> }): number {
  const N = B * T;
  const D = c.hiddenSize;
  const hd = headDim(c);
  const qkvOut = (c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd;
  const perLayer = D * qkvOut + D * D + D * 2 * c.intermediateSize + c.intermediateSize * D;
  const linears = 2 * N * perLayer * c.numHiddenLayers;
  const head = 2 * targets * c.vocabSize * D;
  const attn = 4 * B * c.numAttentionHeads * T * T * hd * c.numHiddenLayers;
  const loraFwd = lora.modules.reduce((s, [out, inF]) => s + 2 * N * lora.r * (inF + out), 0) * c.numHiddenLayers;
  return 2 * (linears + head) + 3 * attn + 3 * loraFwd;
}

/** A python3 that imports torch, or why none was found. */
function findTorchPython(): { python: string } | { missing: string } {
  const candidates = [process.env.CLINILORA_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => p !== undefined && p !== '');
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return { python: py };
  }
  return { missing: `no python3 that imports torch among ${candidates.join(', ')} (Debian: apt-get install python3-torch)` };
}

interface TorchResult {
  torch: string;
  threads: number;
  blas: string;
  step_ms: number;
  tokens_per_s: number;
  loss: number;
}

function runTorch(python: string, ids: number[][], threads: number): TorchResult {
  const config = JSON.parse(readFileSync(path.join(BASE_DIR, 'config.json'), 'utf8')) as unknown;
  const r = spawnSync(python, [path.join(HERE, 'torch_reference.py')], {
    input: JSON.stringify({ config, ids, threads, reps: reps() }),
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`torch_reference.py exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
}

export async function run(): Promise<Row[]> {
  if (tf.getBackend() !== 'wasm') await initBackend({ backend: 'wasm' });
  const be = currentBackend()!;
  const cpu = readCpuInfo();
  const peak = peakEstimate(cpu);
  const native = nativeStatus();
  const rows: Row[] = [{
    kind: 'machine', cpus: os.cpus().length, model: cpu.model, avx2: String(cpu.avx2), fma: String(cpu.fma), mhz: cpu.mhz,
    avx2_fma_peak_gflops: round(peak.avx2FmaGflops, 1), widest_isa_peak_gflops: round(peak.gflops, 1), peak_formula: `${cpu.cores} cores × ${(cpu.mhz / 1000).toFixed(3)} GHz × 32 FLOP/cycle (AVX2: 2 FMA units × 8 lanes × 2)`, backend: be.name, threads: be.threads, native_matmul: native.active ? `on (${native.threads} threads)` : `off: ${native.reason}`,
    loadavg1: round(os.loadavg()[0]!),
  }];

  const spec = SETUPS.find((s) => s.name === 'issue7-float')!;
  const { train, tok } = await auditorSamples();
  const b = build(spec, train, tok);
  try {
    const { B, T, tokens, targets } = b.batch;
    const c = b.model.config;
    const hd = headDim(c);
    const modules: Array<[number, number]> = [[(c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd, c.hiddenSize], [c.hiddenSize, c.hiddenSize]];
    const gflop = loraStepFlops(c, B, T, targets, { r: 16, modules }) / 1e9;
    const trainRow = (impl: string, stepMs: number, extra: Row): Row => ({
      kind: 'train', impl, setup: 'phi3-nano float, LoRA r16 qkv+o, dropout 0.05, AdamW, clip 1.0', B, T, tokens,
      step_ms: round(stepMs, 1), tokens_per_s: round((tokens * 1000) / stepMs, 1), gflop_per_step: round(gflop, 2),
      gflops: round(gflop / (stepMs / 1000), 1), share_of_peak: round(gflop / (stepMs / 1000) / peak.avx2FmaGflops, 3), ...extra,
    });

    // Ours: warm-up, then the median of reps full steps (forward, backward, clip, AdamW).
    const ours = timeMs(b.step, reps());
    rows.push(trainRow('clinilora', ours, { backend: be.name, threads: be.threads, native: String(native.active) }));

    const found = findTorchPython();
    let torchMs: number | undefined;
    if ('python' in found) {
      const ids = Array.from({ length: B }, (_, r) => Array.from(b.batch.ids.subarray(r * T, (r + 1) * T)));
      const t = runTorch(found.python, ids, be.threads);
      torchMs = t.step_ms;
      rows.push(trainRow('pytorch', t.step_ms, { torch: t.torch, threads: t.threads, blas: t.blas, python: found.python }));
    } else {
      rows.push({ kind: 'train', impl: 'pytorch', skipped: found.missing });
    }
    if (torchMs !== undefined) {
      const ratio = torchMs / ours;
      rows.push({ kind: 'goal', what: 'training tokens/s over PyTorch', measured: round(ratio, 2), goal: GOAL_RATIO, met: ratio >= GOAL_RATIO ? 'yes' : 'no' });
    }
    const share = gflop / (ours / 1000) / peak.avx2FmaGflops;
    rows.push({ kind: 'goal', what: 'share of the FLOP-bound limit (AVX2+FMA peak)', measured: round(share, 3), goal: GOAL_SHARE, met: share >= GOAL_SHARE ? 'yes' : 'no' });

    const proj: Array<[string, number, number]> = b.model.linearNames().filter((n) => n.startsWith('model.layers.0.')).map((n) => {
      const l = b.model.getLinear(n);
      return [n.split('.').pop()!, l.outFeatures, l.inFeatures];
    });
    const prof = await profileKernels(b.step, matmulLabeler({ V: c.vocabSize, r: 16, proj }));
    rows.push(...profileRows(spec.name, prof, ours));
  } finally {
    b.opt.dispose();
    b.model.dispose();
  }
  rows.push({ kind: 'machine', what: 'end', loadavg1: round(os.loadavg()[0]!) });
  return rows;
}
