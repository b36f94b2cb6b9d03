/**
 * Greedy decoding speed, batch 1, KV cache: ours (wasm backend, native kernels when built) against
 * llama.cpp (node-llama-cpp, CPU) on the same model exported with `exportGguf`, in the same run.
 *   - phi3-nano (random init), float: ours F32 against llama.cpp F32 and Q8_0;
 *   - full-size Phi-3-mini (random weights, built tensor by tensor as bench/memory.ts does), in its own
 *     child process per quantization: ours NF4 (double quant) against llama.cpp Q4_0, and ours int8
 *     (weight-only) against llama.cpp Q8_0. The GGUF is exported from our quantized model, so both
 *     sides run the same weights up to the GGUF type's own rounding.
 * Prompt: PROMPT random tokens; then `new` greedy tokens (64 nano, 16 Phi-3-mini). Each case: one
 * warm-up run, then the median of BENCH_REPS (default 2). prefill_ms = time to the first new token;
 * decode_tok_s = the other new − 1 tokens over their time. llama.cpp runs with 1 and 2 threads (ggml's
 * threads spin while they wait: on a busy machine 1 can beat 2); each of its rows carries
 * `ratio_llama_cpp_over_ours`, and bench/_table.ts reports the faster row's. BENCH_DECODE_PHI3=0 skips the Phi-3-mini cases (about 12 minutes).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { initBackend } from '../src/backend/index.ts';
import { nativeStatus } from '../src/backend/native.ts';
import { Rng } from '../src/util/random.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { buildPhi3 } from '../src/model/checkpoint.ts';
import type { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { generateGreedy } from '../src/model/generate.ts';
import { exportGguf } from '../src/model/export.ts';
import type { Phi3GgufFileType } from '../src/io/gguf-phi3.ts';
import { randomRows } from './memory.ts';

type Row = Record<string, number | string>;
const SCRIPT = fileURLToPath(import.meta.url);
const PROMPT = 32;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `fn` (returning [prefill ms, total ms]) once to warm up, then `reps` times; medians. */
async function measure(reps: number, newTokens: number, fn: () => Promise<[number, number]>): Promise<{ prefillMs: number; decodeTokS: number }> {
  await fn();
  const pre: number[] = [];
  const dec: number[] = [];
  for (let i = 0; i < reps; i++) {
    const [p, total] = await fn();
    pre.push(p);
    dec.push(((newTokens - 1) * 1000) / (total - p));
  }
  return { prefillMs: Math.round(median(pre) * 10) / 10, decodeTokS: Math.round(median(dec) * 100) / 100 };
}

/**
 * Ours and llama.cpp on `model`, each GGUF type of `ggufTypes` exported from it; rows for all, ours first,
 * each llama.cpp row with its ratio to ours.
 */
async function compare(model: Phi3ForCausalLM, label: { model: string; format: string }, ggufTypes: Phi3GgufFileType[], newTokens: number): Promise<Row[]> {
  const reps = Number(process.env.BENCH_REPS ?? 2);
  const be = await initBackend({ backend: 'wasm' });
  const rng = new Rng(2);
  const prompt = Array.from({ length: PROMPT }, () => 3 + rng.int(32000 - 3));
  const common = { model: label.model, batch: 1, prompt_tokens: PROMPT, new_tokens: newTokens };
  const rows: Row[] = [];

  // Ours: time to the first token (prefill + 1 step), then a separate full run: its decode time is total − prefill.
  const ours = await measure(reps, newTokens, async () => {
    const t0 = performance.now();
    generateGreedy(model, [prompt], 1);
    const t1 = performance.now();
    generateGreedy(model, [prompt], newTokens);
    const t2 = performance.now();
    return [t1 - t0, t2 - t1];
  });
  const oursRow: Row = {
    impl: 'clinilora', format: label.format, backend: be.name, threads: be.threads, native: String(nativeStatus().active), ...common,
    prefill_ms: ours.prefillMs, decode_tok_s: ours.decodeTokS, rss_gb: Math.round(process.memoryUsage.rss() / 1e7) / 100,
  };
  rows.push(oursRow);

  const dir = mkdtempSync(join(tmpdir(), 'clinilora-bench-decode-'));
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled });
  try {
    for (const fileType of ggufTypes) {
      const file = join(dir, `${label.model}-${fileType}.gguf`);
      const e0 = performance.now();
      await exportGguf(model, file, { fileType });
      const exportS = Math.round((performance.now() - e0) / 100) / 10;
      const lm = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
      for (const threads of [...new Set([1, be.threads])]) {
        const ctx = await lm.createContext({ contextSize: 256, batchSize: 256, threads, flashAttention: false });
        const seq = ctx.getSequence();
        const greedy = { generateNext: { token: true } } as const;
        const r = await measure(reps, newTokens, async () => {
          await seq.clearHistory();
          const t0 = performance.now();
          const res = await seq.controlledEvaluate(prompt.map((t, i) => (i === PROMPT - 1 ? [t as Token, greedy] : (t as Token))));
          let tok = res[PROMPT - 1]?.next.token;
          const t1 = performance.now();
          for (let n = 1; n < newTokens; n++) {
            if (tok == null) throw new Error('llama.cpp produced no token');
            const [out] = await seq.controlledEvaluate([[tok, greedy]]);
            tok = out?.next.token;
          }
          return [t1 - t0, performance.now() - t0];
        });
        rows.push({
          impl: 'llama.cpp', format: fileType, backend: 'cpu', threads, ...common, prefill_ms: r.prefillMs, decode_tok_s: r.decodeTokS,
          export_s: exportS, ours_format: label.format, ours_decode_tok_s: ours.decodeTokS,
          ratio_llama_cpp_over_ours: Math.round((r.decodeTokS / ours.decodeTokS) * 100) / 100,
        });
        await ctx.dispose();
      }
      await lm.dispose();
      rmSync(file);
    }
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Full-size Phi-3-mini with random weights, NF4 (double quant) or weight-only int8; the embedding as fp16. */
function phi3Mini(quant: 'nf4' | 'int8'): Phi3ForCausalLM {
  const c = getPreset('phi3-mini-4k-instruct');
  return buildPhi3(c, randomRows(c, 0), { quant, doubleQuant: true, threshold: 0, embeddingStorage: 'float16' });
}

/** The child side: one Phi-3-mini case, its rows as one JSON line. */
async function phi3MiniCase(quant: 'nf4' | 'int8'): Promise<Row[]> {
  await initBackend({ backend: 'wasm' });
  const t0 = performance.now();
  const m = phi3Mini(quant);
  const buildS = Math.round((performance.now() - t0) / 100) / 10;
  const rows = await compare(m, { model: 'phi3-mini (random)', format: quant === 'nf4' ? 'NF4 (double quant)' : 'int8 (weight-only)' }, [quant === 'nf4' ? 'Q4_0' : 'Q8_0'], 16);
  rows[0]!.build_s = buildS;
  return rows;
}

function child(quant: 'nf4' | 'int8'): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', SCRIPT, 'phi3-mini', quant], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    p.on('error', reject);
    p.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`decode case phi3-mini ${quant} exited with ${code}: ${last}`));
      try {
        resolve(JSON.parse(last) as Row[]);
      } catch {
        reject(new Error(`decode case phi3-mini ${quant} printed no JSON: ${last}`));
      }
    });
  });
}

export async function run(): Promise<Row[]> {
  await initBackend({ backend: 'wasm' });
  const nano = initPhi3(getPreset('phi3-nano'), new Rng(1));
  let rows: Row[];
  try {
    rows = await compare(nano, { model: 'phi3-nano', format: 'F32' }, ['F32', 'Q8_0'], 64);
  } finally {
    nano.dispose();
  }
  if (process.env.BENCH_DECODE_PHI3 !== '0') for (const q of ['nf4', 'int8'] as const) rows.push(...(await child(q)));
  return rows;
}

// Run directly with `phi3-mini <nf4|int8>`: that case (the child side).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && process.argv[2] === 'phi3-mini') {
  const q = process.argv[3];
  if (q !== 'nf4' && q !== 'int8') throw new RangeError(`decode.ts phi3-mini <nf4|int8>, not ${q}`);
  process.stdout.write(JSON.stringify(await phi3MiniCase(q)) + '\n');
  process.exit(0);
}
