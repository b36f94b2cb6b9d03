/**
 * Multi-class classification metrics with unparseable predictions (null). An unparseable prediction
 * counts as wrong: it adds to its true class's support and false negatives, and to no class's
 * predictions. Precision, recall or F1 with a zero denominator is 0 (scikit-learn's zero_division=0).
 */
import { CliniloraError } from '../errors.ts';

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Number of true instances. */
  support: number;
}

export interface Averages {
  precision: number;
  recall: number;
  f1: number;
}

export interface ConfusionMatrix {
  /** Row labels (true class). */
  labels: string[];
  /** Column labels: the labels, then 'unparseable'. */
  columns: string[];
  /** matrix[i][j]: true labels[i], predicted columns[j]. */
  matrix: number[][];
}

export interface ClassificationReport {
  n: number;
  accuracy: number;
  perClass: ClassMetrics[];
  /** Support-weighted averages (scikit-learn 'weighted'). */
  weighted: Averages;
  /** Unweighted means over the labels (scikit-learn 'macro'). */
  macro: Averages;
  confusion: ConfusionMatrix;
  /** Share of predictions that are null (no label could be read). */
  unparseableRate: number;
}

const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);
const f1Of = (p: number, r: number): number => div(2 * p * r, p + r);

export const UNPARSEABLE = 'unparseable';

/** Metrics of `predicted` (null = unparseable) against `truth` over the given label set. */
export function classificationReport(truth: readonly string[], predicted: ReadonlyArray<string | null>, labels: readonly string[]): ClassificationReport {
  if (truth.length !== predicted.length) {
    throw new CliniloraError('E_ARG', 'truth and predictions differ in length', { field: 'predicted', expected: String(truth.length), found: String(predicted.length) });
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const K = labels.length;
  const matrix = Array.from({ length: K }, () => new Array<number>(K + 1).fill(0));
  truth.forEach((t, i) => {
    const r = index.get(t);
    if (r === undefined) throw new CliniloraError('E_ARG', `true label '${t}' is not in the label set`, { field: `truth[${i}]`, expected: labels.join('|'), found: t });
    const p = predicted[i];
    const c = p === null || p === undefined ? K : index.get(p);
    if (c === undefined) throw new CliniloraError('E_ARG', `predicted label '${p}' is not in the label set (use null for unparseable)`, { field: `predicted[${i}]`, expected: labels.join('|'), found: String(p) });
    matrix[r]![c]!++;
  });
  const n = truth.length;
  const perClass = labels.map((label, k) => {
    const tp = matrix[k]![k]!;
    const support = matrix[k]!.reduce((a, b) => a + b, 0);
    const predictedK = matrix.reduce((a, row) => a + row[k]!, 0);
    const precision = div(tp, predictedK);
    const recall = div(tp, support);
    return { label, precision, recall, f1: f1Of(precision, recall), support };
  });
  const avg = (w: (m: ClassMetrics) => number): Averages => {
    const total = perClass.reduce((a, m) => a + w(m), 0);
    const mean = (f: (m: ClassMetrics) => number): number => div(perClass.reduce((a, m) => a + w(m) * f(m), 0), total);
    return { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1) };
  };
  const correct = labels.reduce((a, _l, k) => a + matrix[k]![k]!, 0);
  return {
    n,
    accuracy: div(correct, n),
    perClass,
    weighted: avg((m) => m.support),
    macro: avg(() => 1),
    confusion: { labels: [...labels], columns: [...labels, UNPARSEABLE], matrix },
    unparseableRate: div(matrix.reduce((a, row) => a + row[K]!, 0), n),
  };
}
