/**
 * Calibration of predicted probabilities of the positive class (binary labels 0/1).
 * Bins are equal-width on [0, 1]: bin i holds p in [i/B, (i+1)/B), the last bin also p = 1.
 * ECE = Σ_bins (n_b / N) · |mean predicted_b − observed rate_b| (empty bins contribute nothing).
 * This is the calibration of p(y = 1), not the "confidence" ECE of multi-class classifiers.
 */
import { CliniloraError } from '../errors.ts';

export interface ReliabilityBin {
  /** [lower, upper) of the bin. */
  lower: number;
  upper: number;
  count: number;
  /** Mean predicted probability in the bin (NaN when empty). */
  meanPredicted: number;
  /** Share of positives in the bin (NaN when empty). */
  observedRate: number;
}

function check(probs: readonly number[], labels: readonly number[]): void {
  if (probs.length !== labels.length) {
    throw new CliniloraError('E_ARG', 'probabilities and labels differ in length', { field: 'labels', expected: String(probs.length), found: String(labels.length) });
  }
  probs.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw new CliniloraError('E_ARG', 'probability outside [0, 1]', { field: `probabilities[${i}]`, expected: '[0, 1]', found: String(p) });
  });
  labels.forEach((y, i) => {
    if (y !== 0 && y !== 1) throw new CliniloraError('E_ARG', 'label must be 0 or 1', { field: `labels[${i}]`, expected: '0|1', found: String(y) });
  });
}

export function binIndex(p: number, bins: number): number {
  return Math.min(bins - 1, Math.floor(p * bins));
}

export function reliabilityCurve(probs: readonly number[], labels: readonly number[], bins = 10): ReliabilityBin[] {
  check(probs, labels);
  if (!Number.isInteger(bins) || bins < 1) throw new CliniloraError('E_ARG', 'bins must be a positive integer', { field: 'bins', found: String(bins) });
  const sumP = new Array<number>(bins).fill(0);
  const sumY = new Array<number>(bins).fill(0);
  const count = new Array<number>(bins).fill(0);
  probs.forEach((p, i) => {
    const b = binIndex(p, bins);
    sumP[b]! += p;
    sumY[b]! += labels[i]!;
    count[b]!++;
  });
  return count.map((c, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: c,
    meanPredicted: c === 0 ? NaN : sumP[b]! / c,
    observedRate: c === 0 ? NaN : sumY[b]! / c,
  }));
}

/** Expected calibration error with `bins` equal-width bins (default 10). */
export function expectedCalibrationError(probs: readonly number[], labels: readonly number[], bins = 10): number {
  const curve = reliabilityCurve(probs, labels, bins);
  const n = probs.length;
  if (n === 0) return NaN;
  return curve.reduce((a, b) => (b.count === 0 ? a : a + (b.count / n) * Math.abs(b.meanPredicted - b.observedRate)), 0);
}

/** Mean squared error of the probabilities against the 0/1 labels. */
export function brierScore(probs: readonly number[], labels: readonly number[]): number {
  check(probs, labels);
  if (probs.length === 0) return NaN;
  return probs.reduce((a, p, i) => a + (p - labels[i]!) ** 2, 0) / probs.length;
}
