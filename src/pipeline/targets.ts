/**
 * The quality and time targets each task's default nano config is measured against (issue 4), as
 * data: `checkTargets` compares a finished run's metrics with them, and `clinilora targets` runs the
 * three default configs and prints the verdicts. The thresholds are goals to measure against, not
 * facts about the model: the verdicts come from the run, never from here.
 */
import type { CliniloraConfig } from '../config/defaults.ts';

export interface Target {
  /** A metric key of the run's metrics (see src/pipeline/evaluate.ts), or `total_ms`. */
  metric: string;
  /** `>=`/`<=` against a constant; `within` = at least `baselineMetric − value`. */
  op: '>=' | '<=' | 'within';
  value: number;
  baselineMetric?: string;
  /** What the target says, in words. */
  label: string;
}

export const TASK_TARGETS: Readonly<Record<CliniloraConfig['task'], readonly Target[]>> = {
  auditor: [
    { metric: 'accuracy', op: '>=', value: 0.9, label: 'accuracy ≥ 0.90' },
    { metric: 'f1_weighted', op: '>=', value: 0.9, label: 'weighted F1 ≥ 0.90' },
    { metric: 'unparseable_rate', op: '<=', value: 0.01, label: 'unparseable ≤ 1%' },
    { metric: 'faithfulness', op: '>=', value: 0.95, label: 'faithfulness ≥ 0.95' },
    { metric: 'total_ms', op: '<=', value: 15 * 60_000, label: 'train + evaluate in under 15 minutes' },
  ],
  'heart-risk': [
    { metric: 'auc', op: 'within', value: 0.05, baselineMetric: 'baseline_auc', label: 'ROC AUC within 0.05 of the logistic baseline or better' },
    { metric: 'missing_f1', op: '>=', value: 0.95, label: 'missing-item F1 ≥ 0.95' },
  ],
  alpacare: [
    { metric: 'violation_rate', op: '<=', value: 0.05, label: 'violations without the post-filter ≤ 5%' },
    { metric: 'disclaimer_rate', op: '>=', value: 0.95, label: 'disclaimer rate without the post-filter ≥ 95%' },
    { metric: 'filtered_violation_rate', op: '<=', value: 0, label: 'no violations with the post-filter' },
  ],
};

export interface TargetVerdict {
  label: string;
  metric: string;
  /** The measured value (null when the run has no such metric). */
  measured: number | null;
  /** The bound it was compared with (for `within`: baseline − value). */
  bound: number | null;
  met: boolean;
}

/** Verdicts of a run's metrics against its task's targets. A missing metric is not met. */
export function checkTargets(task: CliniloraConfig['task'], metrics: Readonly<Record<string, number>>): TargetVerdict[] {
  return TASK_TARGETS[task].map((t) => {
    const measured = Number.isFinite(metrics[t.metric]) ? metrics[t.metric]! : null;
    let bound: number | null = t.value;
    if (t.op === 'within') {
      const base = t.baselineMetric !== undefined ? metrics[t.baselineMetric] : undefined;
      bound = base !== undefined && Number.isFinite(base) ? base - t.value : null;
    }
    const met = measured !== null && bound !== null && (t.op === '<=' ? measured <= bound : measured >= bound);
    return { label: t.label, metric: t.metric, measured, bound, met };
  });
}

/** Plain-text table of verdicts. */
export function targetsTable(verdicts: readonly TargetVerdict[]): string {
  const fmt = (x: number | null, metric: string): string => (x === null ? '—' : metric === 'total_ms' ? `${(x / 60_000).toFixed(1)} min` : x.toFixed(3));
  const rows = [['target', 'measured', 'bound', 'met'], ...verdicts.map((v) => [v.label, fmt(v.measured, v.metric), fmt(v.bound, v.metric), v.met ? 'yes' : 'NO'])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
