/**
 * The README's issue-7 results table from `npm run bench` output (JSON lines on stdin or in the files
 * named): `npm run bench -- --only issue7 --only memory | node --import tsx bench/_table.ts`.
 * Reads the `issue7` section's train/goal/machine rows and the `memory` section's training-step row;
 * prints Markdown. (The leading underscore keeps bench/index.ts from running it as a section.)
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
if (goals.length > 0 || step !== undefined) {
  out.push('| Goal | measured | goal | met |', '|---|---|---|---|');
  for (const g of goals) out.push(`| ${g.what} | ${g.measured} | ≥ ${g.goal} | ${g.met} |`);
  if (step !== undefined) {
    out.push(`| Phi-3-mini NF4 (random weights), one LoRA step at ${step.tokens} tokens: peak RSS GB | ${step.peak_rss_gb} (step ${step.step_s} s, first ${step.first_step_s} s) | < ${step.goal_peak_rss_gb} | ${step.meets_goal} |`);
  }
}
process.stdout.write(out.join('\n') + '\n');
