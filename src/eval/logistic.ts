/**
 * A small logistic regression (standardised features, L2 penalty, fitted by Newton's method / IRLS)
 * and ROC AUC with a bootstrap interval: the classical baseline the LLM's risk estimates are compared
 * with. Plain TypeScript: with ~300 rows and ~12 features a dense Newton step is microseconds, so no
 * numeric dependency is needed.
 */
import { CliniloraError } from '../errors.ts';
import { Rng } from '../util/random.ts';

export interface LogisticOptions {
  /** L2 penalty on the (standardised) weights, not on the intercept. Default 1. */
  l2?: number;
  /** Newton iterations at most. Default 50. */
  maxIter?: number;
  /** Stop when the largest parameter change is below this. Default 1e-10. */
  tol?: number;
}

export interface LogisticModel {
  featureNames: string[];
  /** Per-feature mean and standard deviation used to standardise (from the training rows). */
  mean: number[];
  std: number[];
  /** Weights on the standardised features. */
  weights: number[];
  intercept: number;
  iterations: number;
}

const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/**
 * Fits P(y=1 | x) = σ(b + w·z), z = (x − mean) / std, minimising the summed log-loss + (l2 / 2)·|w|².
 * `x` is [n][d] (rows of raw feature values), `y` is 0/1.
 */
export function fitLogistic(
  x: readonly (readonly number[])[],
  y: readonly number[],
  featureNames: readonly string[],
  opts: LogisticOptions = {},
): LogisticModel {
  const n = x.length;
  const d = featureNames.length;
  const l2 = opts.l2 ?? 1;
  const maxIter = opts.maxIter ?? 50;
  const tol = opts.tol ?? 1e-10;
  if (n === 0 || y.length !== n) {
    throw new CliniloraError('E_ARG', 'logistic regression needs rows and one label per row', {
      field: 'y',
      expected: `${n} labels (n > 0)`,
      found: String(y.length),
    });
  }
  x.forEach((row, i) => {
    if (row.length !== d || row.some((v) => !Number.isFinite(v))) {
      throw new CliniloraError('E_ARG', `row ${i} has the wrong width or a non-finite value`, {
        field: 'x',
        expected: `${d} finite numbers`,
        found: `[${row.join(', ')}]`,
      });
    }
  });
  if (y.some((v) => v !== 0 && v !== 1)) {
    throw new CliniloraError('E_ARG', 'labels must be 0 or 1', { field: 'y' });
  }

  const mean = Array.from({ length: d }, (_, j) => x.reduce((s, r) => s + r[j]!, 0) / n);
  const std = mean.map((m, j) => {
    const v = x.reduce((s, r) => s + (r[j]! - m) ** 2, 0) / n;
    return v > 0 ? Math.sqrt(v) : 1; // a constant column stays 0 after centring
  });
  // Design matrix with a leading 1 for the intercept: [n, d+1].
  const z = x.map((r) => [1, ...r.map((v, j) => (v - mean[j]!) / std[j]!)]);
  const p = d + 1;
  const beta = new Array<number>(p).fill(0);
  let it = 0;
  for (; it < maxIter; it++) {
    // Gradient g = Zᵀ(μ − y) + λ·w and Hessian H = ZᵀWZ + λ·I (intercept unpenalised).
    const g = new Array<number>(p).fill(0);
    const h = Array.from({ length: p }, () => new Array<number>(p).fill(0));
    for (let i = 0; i < n; i++) {
      const zi = z[i]!;
      let eta = 0;
      for (let k = 0; k < p; k++) eta += zi[k]! * beta[k]!;
      const mu = sigmoid(eta);
      const w = Math.max(mu * (1 - mu), 1e-12);
      const r = mu - y[i]!;
      for (let a = 0; a < p; a++) {
        g[a]! += zi[a]! * r;
        for (let b = 0; b <= a; b++) h[a]![b]! += w * zi[a]! * zi[b]!;
      }
    }
    for (let a = 0; a < p; a++) for (let b = 0; b < a; b++) h[b]![a] = h[a]![b]!;
    for (let a = 1; a < p; a++) {
      g[a]! += l2 * beta[a]!;
      h[a]![a]! += l2;
    }
    const step = solveSymmetric(h, g);
    let maxStep = 0;
    for (let a = 0; a < p; a++) {
      beta[a]! -= step[a]!;
      maxStep = Math.max(maxStep, Math.abs(step[a]!));
    }
    if (maxStep < tol) {
      it++;
      break;
    }
  }
  return { featureNames: [...featureNames], mean, std, weights: beta.slice(1), intercept: beta[0]!, iterations: it };
}

/** Solves A·x = b for symmetric positive-definite A by Cholesky. */
function solveSymmetric(a: number[][], b: number[]): number[] {
  const n = b.length;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      if (i === j) {
        if (!(s > 0)) throw new CliniloraError('E_ARG', 'logistic regression Hessian is not positive definite', { hint: 'use l2 > 0' });
        l[i]![i] = Math.sqrt(s);
      } else {
        l[i]![j] = s / l[j]![j]!;
      }
    }
  }
  const yv = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i]![k]! * yv[k]!;
    yv[i] = s / l[i]![i]!;
  }
  const out = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = yv[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k]![i]! * out[k]!;
    out[i] = s / l[i]![i]!;
  }
  return out;
}

/** The per-feature terms w_j·z_j of the logit for one row (how much each feature moves the log-odds). */
export function logitContributions(model: LogisticModel, row: readonly number[]): number[] {
  return model.weights.map((w, j) => (w * (row[j]! - model.mean[j]!)) / model.std[j]!);
}

export function predictProba(model: LogisticModel, row: readonly number[]): number {
  return sigmoid(model.intercept + logitContributions(model, row).reduce((s, c) => s + c, 0));
}

/**
 * Area under the ROC curve: the probability that a random positive scores above a random negative
 * (ties count one half), computed from average ranks (Mann–Whitney U). NaN when a class is absent.
 */
export function rocAuc(scores: readonly number[], labels: readonly number[]): number {
  if (scores.length !== labels.length) {
    throw new CliniloraError('E_ARG', 'scores and labels differ in length', {
      field: 'labels',
      expected: String(scores.length),
      found: String(labels.length),
    });
  }
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(scores.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const avg = (i + j) / 2 + 1; // ranks are 1-based
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = avg;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  labels.forEach((l, i) => {
    if (l === 1) {
      nPos++;
      rankSum += ranks[i]!;
    }
  });
  const nNeg = labels.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface AucInterval {
  auc: number;
  lower: number;
  upper: number;
  /** Bootstrap resamples that had both classes (the others are skipped). */
  resamples: number;
}

/**
 * ROC AUC with a percentile bootstrap interval (resampling rows with replacement, seeded). With ~45
 * test rows a single split's AUC moves by about ±0.1, so report the interval, not the point alone.
 */
export function bootstrapAuc(
  scores: readonly number[],
  labels: readonly number[],
  opts: { seed?: number; resamples?: number; level?: number } = {},
): AucInterval {
  const rng = new Rng(opts.seed ?? 42).split('bootstrap-auc');
  const b = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const n = scores.length;
  const aucs: number[] = [];
  const s = new Array<number>(n);
  const l = new Array<number>(n);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < n; i++) {
      const k = rng.int(n);
      s[i] = scores[k]!;
      l[i] = labels[k]!;
    }
    const a = rocAuc(s, l);
    if (!Number.isNaN(a)) aucs.push(a);
  }
  aucs.sort((x, y) => x - y);
  const q = (p: number): number => aucs[Math.min(aucs.length - 1, Math.max(0, Math.floor(p * aucs.length)))] ?? NaN;
  return { auc: rocAuc(scores, labels), lower: q((1 - level) / 2), upper: q(1 - (1 - level) / 2), resamples: aucs.length };
}
