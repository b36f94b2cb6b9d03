/** Plain-text summaries of a run: the "base alone vs adapter" table `clinilora train` prints. */
import type { CliniloraConfig } from '../config/defaults.ts';
import { formatDuration } from '../train/progress.ts';
import type { TaskEvaluation } from './evaluate.ts';

/** The metrics shown per task, with their labels. */
export const SUMMARY_METRICS: Readonly<Record<CliniloraConfig['task'], ReadonlyArray<readonly [string, string]>>> = {
  auditor: [
    ['accuracy', 'accuracy'],
    ['f1_weighted', 'weighted F1'],
    ['unparseable_rate', 'unparseable rate'],
    ['faithfulness', 'faithfulness'],
    ['gen_tokens_per_sec', 'generation tokens/s'],
  ],
  'heart-risk': [
    ['auc', 'ROC AUC'],
    ['accuracy', 'accuracy'],
    ['ece', 'ECE'],
    ['brier', 'Brier'],
    ['missing_f1', 'missing-item F1'],
    ['gen_tokens_per_sec', 'generation tokens/s'],
  ],
  alpacare: [
    ['perplexity', 'held-out perplexity'],
    ['violation_rate', 'violation rate (no filter)'],
    ['filtered_violation_rate', 'violation rate (filter)'],
    ['disclaimer_rate', 'disclaimer rate (no filter)'],
    ['refusal_rate', 'refusal rate (no filter)'],
    ['gen_tokens_per_sec', 'generation tokens/s'],
  ],
};

const fmt = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(3));

/** A table: one row per metric, columns base alone / base + adapter (and the task's baseline row). */
export function summaryTable(task: CliniloraConfig['task'], base: TaskEvaluation | null, adapter: TaskEvaluation | null): string {
  const rows: string[][] = [['metric', 'base alone', 'base + adapter']];
  for (const [key, label] of SUMMARY_METRICS[task]) rows.push([label, fmt(base?.metrics[key]), fmt(adapter?.metrics[key])]);
  const m = adapter?.metrics ?? base?.metrics;
  if (task === 'auditor' && m !== undefined) {
    rows.push(['rule-based reference: accuracy', fmt(m.reference_accuracy), '']);
    rows.push(['majority class: accuracy', fmt(m.majority_accuracy), '']);
  }
  if (task === 'heart-risk' && m?.baseline_auc !== undefined) rows.push(['logistic baseline: ROC AUC', fmt(m.baseline_auc), '']);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function timingLine(t: { totalMs: number; trainMs: number; evalMs: number; baseEvalMs: number }): string {
  return `time: total ${formatDuration(t.totalMs)} (train ${formatDuration(t.trainMs)}, eval adapter ${formatDuration(t.evalMs)}, eval base ${formatDuration(t.baseEvalMs)})`;
}
