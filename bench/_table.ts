/**
 * The README's issue-7 results tables from `npm run bench` output (JSON lines on stdin or in the files
 * named): `npm run bench -- --only issue7 --only memory --only decode | node --import tsx bench/_table.ts`.
 * Reads the `issue7` section's train/goal/machine rows, the `memory` section's training-step row and
 * the `decode` section's rows (ours beside llama.cpp); prints Markdown. (The leading underscore keeps bench/index.ts from running it as a section.)
 */
import { readFileSync } from 'node:fs';

type Row = Record<string, string | number>;

function readRows(): Row[] {
  const files = process.argv.slice(2);
  const text = files.length > 0 ? files.map((f) => readFileSync(f, 'utf8')).join('\n') : readFileSync(0, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l, i) => {
      try {
        return JSON.parse(l) as Row;
      } catch {
        throw new Error(`line ${i + 1}: not JSON: ${l.slice(0, 80)}`);
      }
    });
}

const rows = readRows();
const pick = (section: string, kind: string) => rows.filter((r) => r.section === section && r.kind === kind);
const out: string[] = [];
const machine = pick('issue7', 'machine')[0];
if (machine !== undefined) {
  out.push(`Machine: ${machine.cpus} cores (${machine.model}), ${machine.backend} backend with ${machine.threads} threads, native matmul ${machine.native_matmul}; fp32 AVX2+FMA peak ${machine.avx2_fma_peak_gflops} GFLOP/s (${machine.peak_formula}); load average ${machine.loadavg1} at start.`, '');
}
const train = pick('issue7', 'train');
if (train.length > 0) {
  out.push('| Training step (phi3-nano, LoRA r16 qkv+o, B 4 × T 256) | step ms | tokens/s | GFLOP/s | share of peak |', '|---|---|---|---|---|');
  for (const r of train) {
    if (r.skipped !== undefined) out.push(`| ${r.impl} | not run: ${r.skipped} | | | |`);
    else out.push(`| ${r.impl === 'pytorch' ? `PyTorch ${r.torch} (${r.blas}, ${r.threads} threads)` : `clinilora (${r.backend}, native ${r.native})`} | ${r.step_ms} | ${r.tokens_per_s} | ${r.gflops} | ${r.share_of_peak} |`);
  }
  out.push('');
}
const goals = pick('issue7', 'goal');
const step = rows.find((r) => r.section === 'memory' && r.case === 'nf4-dq-train-step');
const decodeGoalRows = decodeGoals();
if (goals.length > 0 || step !== undefined || decodeGoalRows.length > 0) {
  out.push('| Goal | measured | goal | met |', '|---|---|---|---|');
  for (const g of goals) out.push(`| ${g.what} | ${g.measured} | ≥ ${g.goal} | ${g.met} |`);
  if (step !== undefined) {
    const measured = step.error !== undefined ? `fails: ${step.error}; ${step.peak_rss_gb} GB RSS` : `${step.peak_rss_gb} (step ${step.step_s} s, first ${step.first_step_s} s)`;
    out.push(`| Phi-3-mini NF4 (random weights), one LoRA step at ${step.tokens} tokens: peak RSS GB | ${measured} | < ${step.goal_peak_rss_gb} | ${step.meets_goal} |`);
  }
  for (const g of decodeGoalRows) out.push(g);
  out.push('');
}
const decode = rows.filter((r) => r.section === 'decode' && r.impl !== undefined);
if (decode.length > 0) {
  out.push(
    '| Decoding, batch 1, greedy, KV cache | ours | ours tok/s | llama.cpp | llama.cpp tok/s, 1 thread | 2 threads | llama.cpp ÷ ours (best) |',
    '|---|---|---|---|---|---|---|',
  );
  for (const ours of decode.filter((r) => r.impl === 'clinilora')) {
    const llama = decode.filter((r) => r.impl === 'llama.cpp' && r.model === ours.model && r.ours_format === ours.format);
    for (const format of [...new Set(llama.map((r) => r.format))]) {
      const at = (t: number) => llama.find((r) => r.format === format && r.threads === t)?.decode_tok_s ?? '—';
      out.push(`| ${ours.model} (prompt ${ours.prompt_tokens}, ${ours.new_tokens} new) | ${ours.format} | ${ours.decode_tok_s} | ${format} | ${at(1)} | ${at(2)} | ${bestRatio(llama.filter((r) => r.format === format))} |`);
    }
  }
}

/** llama.cpp's faster row over ours. */
function bestRatio(llama: Row[]): number {
  return Math.max(...llama.map((r) => Number(r.ratio_llama_cpp_over_ours)));
}

/** One goal row per quantized Phi-3-mini decode comparison: llama.cpp ÷ ours ≤ 2. */
function decodeGoals(): string[] {
  const d = rows.filter((r) => r.section === 'decode' && r.impl === 'llama.cpp');
  const keys = [...new Set(d.map((r) => `${r.model}|${r.ours_format}|${r.format}`))];
  return keys.map((k) => {
    const [model, ours, format] = k.split('|');
    const ratio = bestRatio(d.filter((r) => r.model === model && r.ours_format === ours && r.format === format));
    return `| decoding ${model}: llama.cpp ${format} ÷ ours ${ours} | ${ratio} | ≤ 2 | ${ratio <= 2 ? 'yes' : 'no'} |`;
  });
}
process.stdout.write(out.join('\n') + '\n');
