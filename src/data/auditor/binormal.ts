/**
 * The equal-variance binormal classifier the generator uses to make metrics that agree with each
 * other: negatives score ~ N(0, 1), positives ~ N(d, 1), so AUC = Φ(d / √2). An operating threshold
 * gives TPR and FPR, a finite evaluation set gives a confusion matrix, and accuracy, precision,
 * recall and F1 all come from that one matrix. The Brier score of the calibrated model comes from the
 * posterior P(y = 1 | s), integrated numerically.
 */
import type { Rng } from '../../util/random.ts';

/** Φ(x), standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; |error| < 1.5e-7). */
export function normCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Φ⁻¹(p) by bisection on normCdf: only called a few times per report, so simple beats clever. */
export function normInv(p: number): number {
  let lo = -8;
  let hi = 8;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Separation d of the binormal model with this AUC. */
export function separationForAuc(auc: number): number {
  return Math.SQRT2 * normInv(Math.min(0.999, Math.max(0.001, auc)));
}

/** Score threshold s* at which a share `rate` of cases is predicted positive (prevalence p). */
export function thresholdForRate(d: number, p: number, rate: number): number {
  let lo = -10;
  let hi = 10 + Math.abs(d);
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    const predicted = p * (1 - normCdf(mid - d)) + (1 - p) * (1 - normCdf(mid));
    if (predicted > rate) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Brier score of the perfectly calibrated binormal model: E[q(1 − q)] with q = P(y = 1 | s), by the
 * midpoint rule over s (200 points; error far below the 3 printed decimals).
 */
export function calibratedBrier(d: number, p: number): number {
  const lo = Math.min(0, d) - 7;
  const hi = Math.max(0, d) + 7;
  const steps = 200;
  const h = (hi - lo) / steps;
  const pdf = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const s = lo + (i + 0.5) * h;
    const fPos = p * pdf(s - d);
    const fNeg = (1 - p) * pdf(s);
    const density = fPos + fNeg;
    if (density === 0) continue;
    const q = fPos / density;
    sum += density * q * (1 - q) * h;
  }
  return sum;
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** A binomial draw by its normal approximation, clamped to [0, n] (n·q is never tiny here). */
function binomial(rng: Rng, n: number, q: number): number {
  const x = Math.round(n * q + rng.normal() * Math.sqrt(n * q * (1 - q)));
  return Math.min(n, Math.max(0, x));
}

/** The confusion matrix of `nPos` positives and `nNeg` negatives at score threshold s*. */
export function sampleConfusion(rng: Rng, d: number, threshold: number, nPos: number, nNeg: number): Confusion {
  const tpr = 1 - normCdf(threshold - d);
  const fpr = 1 - normCdf(threshold);
  const tp = binomial(rng, nPos, tpr);
  const fp = binomial(rng, nNeg, fpr);
  return { tp, fp, fn: nPos - tp, tn: nNeg - fp };
}

/** Accuracy, precision, recall, F1 of one matrix (precision 0 when nothing is predicted positive, as sklearn's zero_division=0). */
export function confusionMetrics(c: Confusion): { accuracy: number; precision: number; recall: number; f1: number } {
  const n = c.tp + c.fp + c.tn + c.fn;
  return {
    accuracy: (c.tp + c.tn) / n,
    precision: c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : 0,
    recall: c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : 0,
    f1: 2 * c.tp + c.fp + c.fn > 0 ? (2 * c.tp) / (2 * c.tp + c.fp + c.fn) : 0,
  };
}
