/**
 * Greedy decoding speed, batch 1, random phi3-nano: ours (KV cache, wasm backend) against llama.cpp
 * (node-llama-cpp, CPU) on the same model exported with `exportGguf` in F32 and Q8_0.
 * Prompt: PROMPT random tokens; then NEW greedy tokens. Each case: one warm-up run, then the median
 * of BENCH_REPS (default 2). prefill_ms = time to the first new token; decode_tok_s = the other
 * NEW − 1 tokens over their time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { initBackend } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { generateGreedy } from '../src/model/generate.ts';
import { exportGguf } from '../src/model/export.ts';

const PROMPT = 32;
const NEW = 64;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `fn` (returning [prefill ms, total ms]) once to warm up, then `reps` times; medians. */
async function measure(reps: number, fn: () => Promise<[number, number]>): Promise<{ prefillMs: number; decodeTokS: number }> {
  await fn();
  const pre: number[] = [];
  const dec: number[] = [];
  for (let i = 0; i < reps; i++) {
    const [p, total] = await fn();
    pre.push(p);
    dec.push(((NEW - 1) * 1000) / (total - p));
  }
  return { prefillMs: Math.round(median(pre) * 10) / 10, decodeTokS: Math.round(median(dec) * 10) / 10 };
}

export async function run(): Promise<Array<Record<string, number | string>>> {
  const reps = Number(process.env.BENCH_REPS ?? 2);
  const be = await initBackend({ backend: 'wasm' });
  const c = getPreset('phi3-nano');
  const model = initPhi3(c, new Rng(1));
  const rng = new Rng(2);
  const prompt = Array.from({ length: PROMPT }, () => 3 + rng.int(32000 - 3));
  const rows: Array<Record<string, number | string>> = [];
  const common = { model: 'phi3-nano', batch: 1, prompt_tokens: PROMPT, new_tokens: NEW };

  // Ours: time to the first token (prefill + 1 step), then the whole run.
  const ours = await measure(reps, async () => {
    const t0 = performance.now();
    generateGreedy(model, [prompt], 1);
    const t1 = performance.now();
    generateGreedy(model, [prompt], NEW);
    const t2 = performance.now();
    return [t1 - t0, t2 - t1]; // a separate full run: its decode time is total − prefill
  });
  rows.push({ impl: 'clinilora', format: 'F32', backend: be.name, threads: be.threads, ...common, prefill_ms: ours.prefillMs, decode_tok_s: ours.decodeTokS });

  const dir = mkdtempSync(join(tmpdir(), 'clinilora-bench-decode-'));
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled });
  try {
    for (const fileType of ['F32', 'Q8_0'] as const) {
      const file = join(dir, `nano-${fileType}.gguf`);
      await exportGguf(model, file, { fileType });
      const lm = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
      // ggml's threads spin while they wait: on a busy machine 1 thread can beat 2, so both are shown.
      for (const threads of [...new Set([1, be.threads])]) {
        const ctx = await lm.createContext({ contextSize: 256, batchSize: 256, threads, flashAttention: false });
        const seq = ctx.getSequence();
        const greedy = { generateNext: { token: true } } as const;
        const r = await measure(reps, async () => {
          await seq.clearHistory();
          const t0 = performance.now();
          const res = await seq.controlledEvaluate(prompt.map((t, i) => (i === PROMPT - 1 ? [t as Token, greedy] : (t as Token))));
          let tok = res[PROMPT - 1]?.next.token;
          const t1 = performance.now();
          for (let n = 1; n < NEW; n++) {
            if (tok == null) throw new Error('llama.cpp produced no token');
            const [out] = await seq.controlledEvaluate([[tok, greedy]]);
            tok = out?.next.token;
          }
          return [t1 - t0, performance.now() - t0];
        });
        rows.push({ impl: 'llama.cpp', format: fileType, backend: 'cpu', threads, ...common, prefill_ms: r.prefillMs, decode_tok_s: r.decodeTokS });
        await ctx.dispose();
      }
      await lm.dispose();
      rmSync(file);
    }
  } finally {
    await llama.dispose();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
