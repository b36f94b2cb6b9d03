/**
 * The heart-risk evaluation: discrimination (ROC AUC with a bootstrap interval), accuracy at a
 * threshold, calibration (ECE, Brier, reliability curve) and missing-item detection; optionally the
 * same numbers for a baseline (the logistic regression on the same split) beside it.
 */
import { CliniloraError } from '../errors.ts';
import { bootstrapAuc, type AucInterval } from './logistic.ts';
import { brierScore, expectedCalibrationError, reliabilityCurve, type ReliabilityBin } from './calibration.ts';
import { missingItemScores, type MissingItemScores } from './missing.ts';

export interface HeartPrediction {
  id: string;
  /** The model's risk probability (e.g. from riskProbabilityFromModel or the parsed answer). */
  probability: number;
  /** death_event 0/1. */
  label: 0 | 1;
  /** Items withheld from the input (empty for complete inputs). */
  missingTrue: readonly string[];
  /** Items the answer names as missing. */
  missingNamed: readonly string[];
}

export interface HeartEvalOptions {
  /** Probability ≥ threshold predicts death (default 0.5). */
  threshold?: number;
  /** Equal-width calibration bins (default 10). */
  bins?: number;
  /** Bootstrap of the AUC (defaults: seed 42, 2000 resamples, 95%). */
  seed?: number;
  resamples?: number;
  /** Baseline probabilities on the same patients (e.g. heartBaseline(...).predictions). */
  baseline?: ReadonlyArray<{ probability: number; label: 0 | 1 }>;
}

export interface ProbabilityMetrics {
  n: number;
  auc: AucInterval;
  accuracy: number;
  ece: number;
  brier: number;
  reliability: ReliabilityBin[];
}

export interface HeartEvaluation extends ProbabilityMetrics {
  threshold: number;
  bins: number;
  missing: MissingItemScores;
  baseline?: ProbabilityMetrics;
}

export function probabilityMetrics(probs: readonly number[], labels: ReadonlyArray<0 | 1>, opts: HeartEvalOptions = {}): ProbabilityMetrics {
  const threshold = opts.threshold ?? 0.5;
  const bins = opts.bins ?? 10;
  const correct = probs.filter((p, i) => (p >= threshold ? 1 : 0) === labels[i]).length;
  return {
    n: probs.length,
    auc: bootstrapAuc(probs, labels, { seed: opts.seed ?? 42, resamples: opts.resamples ?? 2000 }),
    accuracy: probs.length === 0 ? NaN : correct / probs.length,
    ece: expectedCalibrationError(probs, labels, bins),
    brier: brierScore(probs, labels),
    reliability: reliabilityCurve(probs, labels, bins),
  };
}

export function evaluateHeart(preds: readonly HeartPrediction[], opts: HeartEvalOptions = {}): HeartEvaluation {
  preds.forEach((p, i) => {
    if (!(p.probability >= 0 && p.probability <= 1)) {
      throw new CliniloraError('E_ARG', `prediction ${p.id}: probability outside [0, 1]`, { field: `preds[${i}].probability`, expected: '[0, 1]', found: String(p.probability) });
    }
  });
  const out: HeartEvaluation = {
    ...probabilityMetrics(preds.map((p) => p.probability), preds.map((p) => p.label), opts),
    threshold: opts.threshold ?? 0.5,
    bins: opts.bins ?? 10,
    missing: missingItemScores(preds),
  };
  if (opts.baseline !== undefined) {
    out.baseline = probabilityMetrics(opts.baseline.map((b) => b.probability), opts.baseline.map((b) => b.label), opts);
  }
  return out;
}
