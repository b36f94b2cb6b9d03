/**
 * Seeded generator of realistic clinical-model audit reports.
 *
 * For each report a target category is drawn (balanced), then a plan of which problems are present
 * (the target's own, sometimes one lower-priority problem as well, so the priority order is
 * exercised), then values: drift, label shift, missingness, prevalence and AUC first (with the
 * correlations real deployments show: drift and missingness erode AUC, drift and label shift worsen
 * calibration, overfit models are over-confident), then accuracy/precision/recall/F1 from one
 * confusion matrix of a binormal classifier at an operating threshold, and the Brier score from the
 * calibrated Brier plus the miscalibration. A share of reports puts one value deliberately within a
 * small margin of a threshold, on either side. The label is always `referenceAudit`'s, never the
 * target: a borderline value on the other side of its threshold simply yields another category.
 */
import { check } from '../../errors.ts';
import { Rng } from '../../util/random.ts';
import { calibratedBrier, confusionMetrics, sampleConfusion, separationForAuc, thresholdForRate } from './binormal.ts';
import { validateReport, type AuditReport } from './report.ts';
import { AUDIT_CATEGORIES, THRESHOLDS, referenceAudit, type AuditCategory, type AuditResult, type ThresholdName } from './rules.ts';

export const GENERATOR_NAME = 'clinilora.auditor-reports';
export const GENERATOR_VERSION = '1.0.0';

/** Half-width of the band around each threshold that borderline reports are drawn from. */
export const BORDERLINE_MARGIN: Record<Exclude<ThresholdName, 'severe_problem_count'>, number> = {
  auc_severe: 0.015,
  drift_minor: 0.01,
  drift_major: 0.02,
  ece: 0.012,
  missing_rate: 0.01,
  integrity_issues: 1,
  train_eval_gap: 0.01,
  pos_rate_low: 0.008,
  pos_rate_high: 0.008,
  label_shift: 0.01,
};
export type BorderlineName = keyof typeof BORDERLINE_MARGIN;
const BORDERLINE_NAMES = Object.keys(BORDERLINE_MARGIN) as BorderlineName[];

type Imbalance = 'low' | 'high' | 'shift' | 'low+shift';
type Integrity = 'missing' | 'issues' | 'both';

/** Which problems a report is drawn with. */
export interface ReportPlan {
  target: AuditCategory;
  aucSevere: boolean;
  drift: 'none' | 'minor' | 'major';
  calibration: boolean;
  overfitting: boolean;
  imbalance: Imbalance | null;
  integrity: Integrity | null;
  withTrain: boolean;
  borderline: BorderlineName | null;
}

export interface GeneratedReport {
  index: number;
  report: AuditReport;
  audit: AuditResult;
  plan: ReportPlan;
}

export interface GenerateOptions {
  seed?: number;
  n?: number;
  /** Share of reports with one value drawn near a threshold (default 0.3). */
  borderlineShare?: number;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

function choose<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

function makePlan(rng: Rng, target: AuditCategory, borderlineShare: number): ReportPlan {
  const p: ReportPlan = { target, aucSevere: false, drift: 'none', calibration: false, overfitting: false, imbalance: null, integrity: null, withTrain: rng.uniform() < 0.4, borderline: null };
  const imbalanceMode = (): Imbalance => choose(rng, ['low', 'low', 'low', 'high', 'shift', 'shift', 'shift', 'low+shift'] as const);
  const integrityMode = (): Integrity => choose(rng, ['missing', 'missing', 'issues', 'issues', 'both'] as const);
  // Adds one problem family (or minor drift) to the plan.
  const add = (what: string): void => {
    if (what === 'minor') p.drift = 'minor';
    else if (what === 'major') p.drift = 'major';
    else if (what === 'calibration') p.calibration = true;
    else if (what === 'overfitting') p.overfitting = true;
    else if (what === 'imbalance') p.imbalance = imbalanceMode();
    else if (what === 'integrity') p.integrity = integrityMode();
  };
  const secondary = (options: string[]): void => {
    if (rng.uniform() < 0.35) add(choose(rng, options));
  };
  switch (target) {
    case 'Healthy':
      break;
    case 'Minor Drift':
      add('minor');
      break;
    case 'Calibration Failure':
      add('calibration');
      secondary(['minor']);
      break;
    case 'Overfitting (Train>>Test)':
      add('overfitting');
      secondary(['calibration', 'minor']);
      break;
    case 'Class Imbalance Problem':
      add('imbalance');
      secondary(['overfitting', 'calibration', 'minor']);
      break;
    case 'Major Drift':
      add('major');
      secondary(['imbalance', 'overfitting', 'calibration']);
      break;
    case 'Data Integrity Issues':
      add('integrity');
      secondary(['major', 'imbalance', 'overfitting', 'calibration', 'minor']);
      break;
    case 'Severe Failure':
      if (rng.uniform() < 0.55) {
        // Discrimination collapsed, often with other problems alongside.
        p.aucSevere = true;
        for (const f of ['integrity', 'imbalance', 'overfitting', 'calibration']) if (rng.uniform() < 0.25) add(f);
        p.drift = choose(rng, ['none', 'none', 'minor', 'major'] as const);
      } else {
        // Several problems at once with acceptable AUC: 3 (or 4) of the five families.
        const families = rng.shuffle(['integrity', 'major', 'imbalance', 'overfitting', 'calibration']);
        for (const f of families.slice(0, rng.uniform() < 0.8 ? 3 : 4)) add(f);
      }
      break;
  }
  if (p.overfitting) p.withTrain = true;
  if (rng.uniform() < borderlineShare) {
    const near: BorderlineName[] = [];
    if (p.aucSevere) near.push('auc_severe');
    if (p.drift === 'minor') near.push('drift_minor', 'drift_major');
    if (p.drift === 'major') near.push('drift_major');
    if (p.calibration) near.push('ece');
    if (p.overfitting) near.push('train_eval_gap');
    if (p.imbalance === 'low') near.push('pos_rate_low');
    if (p.imbalance === 'high') near.push('pos_rate_high');
    if (p.imbalance === 'shift') near.push('label_shift');
    if (p.integrity === 'missing') near.push('missing_rate');
    if (p.integrity === 'issues') near.push('integrity_issues');
    // A healthy report (or one whose problems have no single trigger) can sit near any threshold.
    p.borderline = choose(rng, near.length > 0 ? near : BORDERLINE_NAMES);
    if (p.borderline === 'train_eval_gap') p.withTrain = true;
  }
  return p;
}

/** Draws until `accept` holds (at most 20 tries), then falls back; keeps the stream deterministic. */
function drawWhile(draw: () => number, accept: (x: number) => boolean, fallback: () => number): number {
  for (let i = 0; i < 20; i++) {
    const x = draw();
    if (accept(x)) return x;
  }
  return fallback();
}

function sampleReport(rng: Rng, plan: ReportPlan): AuditReport {
  const u = (): number => rng.uniform();
  // A value within the margin of its threshold, on either side.
  const near = (name: BorderlineName): number => {
    const t = THRESHOLDS[name];
    if (name === 'integrity_issues') return t - 1 + rng.int(2);
    return t + (2 * u() - 1) * BORDERLINE_MARGIN[name];
  };
  const pick = (names: BorderlineName[], draw: () => number): number => {
    const hit = names.find((n) => n === plan.borderline);
    return hit !== undefined ? near(hit) : draw();
  };

  const drift = pick(['drift_minor', 'drift_major'], () =>
    plan.drift === 'major' ? 0.25 + 0.6 * u() ** 2 : plan.drift === 'minor' ? 0.1 + 0.145 * u() : 0.004 + 0.09 * u() ** 1.4,
  );

  const imb = plan.imbalance;
  const posRate = pick(['pos_rate_low', 'pos_rate_high'], () =>
    imb === 'low' || imb === 'low+shift' ? 0.003 + 0.044 * u() : imb === 'high' ? 0.953 + 0.044 * u() : 0.06 + 0.5 * u() ** 1.6,
  );
  // Label shift grows with input drift; the training prevalence must stay within [0, 1].
  const maxShift = Math.max(posRate, 1 - posRate) - 0.001;
  const labelShift = pick(['label_shift'], () =>
    imb === 'shift' || imb === 'low+shift'
      ? Math.min(maxShift, 0.1 + 0.22 * u() ** 1.4)
      : drawWhile(() => Math.abs(rng.normal()) * (0.012 + 0.06 * drift), (x) => x < 0.09, () => 0.09 * u()),
  );

  const integ = plan.integrity;
  const missingRate = pick(['missing_rate'], () => (integ === 'missing' || integ === 'both' ? 0.1 + 0.35 * u() ** 1.5 : 0.001 + 0.08 * u() ** 2));
  const issues = pick(['integrity_issues'], () =>
    integ === 'issues' || integ === 'both' ? Math.min(40, 3 + Math.floor(-Math.log(1 - u()) * 4)) : choose(rng, [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]),
  );

  // AUC: a base quality, eroded by drift, missingness and label shift (never below 0.62 unless severe).
  let auc = pick(['auc_severe'], () => {
    if (plan.aucSevere) return 0.47 + 0.129 * u();
    const base = plan.overfitting ? 0.66 + 0.2 * u() : 0.7 + 0.24 * u();
    const erosion = Math.min(0.9, drift * 0.7 * u() + missingRate * u() + labelShift * 0.5 * u());
    return base - (base - 0.62) * erosion;
  });

  let gap = 0;
  if (plan.withTrain) {
    gap = pick(['train_eval_gap'], () =>
      plan.overfitting ? 0.1 + Math.min(0.22, 0.995 - auc - 0.1) * u() ** 1.3 : -0.012 + 0.1 * u() ** 1.3,
    );
    if (auc + gap > 0.998) auc = 0.998 - gap;
  }

  const ece = pick(['ece'], () =>
    plan.calibration
      ? Math.min(0.6, 0.15 + 0.22 * u() ** 1.4 + 0.1 * drift * u())
      : drawWhile(
          () => 0.008 + 0.045 * u() + 0.12 * drift * u() + 0.25 * labelShift * u() + 0.3 * Math.max(0, gap) * u(),
          (x) => x < 0.14,
          () => 0.01 + 0.12 * u(),
        ),
  );

  // Confusion matrix of a finite evaluation set: rare outcomes need larger sets to have positives.
  const p = round3(clamp(posRate, 0.001, 0.999));
  const aucR = round3(clamp(auc, 0.001, 0.999));
  const n = Math.max(Math.round(Math.exp(Math.log(400) + u() * Math.log(50))), Math.ceil(20 / Math.min(p, 1 - p)));
  const nPos = clamp(Math.round(p * n), 2, n - 2);
  const d = separationForAuc(aucR);
  // Rare-class models tend to under-call the minority class at their default threshold.
  const k = imb === 'low' || imb === 'high' || imb === 'low+shift' ? 0.3 + 0.9 * u() : 0.7 + 0.7 * u();
  const rate = clamp(p * k, 0.001, 0.99);
  const m = confusionMetrics(sampleConfusion(rng, d, thresholdForRate(d, p, rate), nPos, n - nPos));
  const eceR = round3(clamp(ece, 0.001, 0.99));
  const brier = clamp(calibratedBrier(d, p) + eceR * eceR * (0.9 + 0.6 * u()) + 0.003 * rng.normal(), 0.001, 0.99);

  const report: Record<string, number> = {
    auc: aucR,
    accuracy: round3(m.accuracy),
    precision: round3(m.precision),
    recall: round3(m.recall),
    f1: round3(m.f1),
    ece: eceR,
    brier: round3(brier),
    drift: round3(Math.max(0.001, drift)),
    missing_rate: round3(clamp(missingRate, 0, 0.99)),
    label_shift: round3(clamp(labelShift, 0, 0.99)),
    pos_rate: p,
    data_integrity_issues: issues,
  };
  if (plan.withTrain) {
    const trainAuc = round3(clamp(aucR + gap, 0.001, 0.999));
    report.train_auc = trainAuc;
    // Exact difference of two 3-decimal numbers, so the printed gap always equals train_auc − auc.
    report.train_eval_gap = Math.round(trainAuc * 1000 - aucR * 1000) / 1000;
  }
  return validateReport(report);
}

/** Relative frequency of each category as a target (1 unless listed). */
const TARGET_WEIGHT: Partial<Record<AuditCategory, number>> = { Healthy: 0.7 };

/** `n` reports (default 5000) from `seed` (default 42), each labelled by the reference auditor. */
export function generateReports(opts: GenerateOptions = {}): GeneratedReport[] {
  const seed = opts.seed ?? 42;
  const n = opts.n ?? 5000;
  const borderlineShare = opts.borderlineShare ?? 0.3;
  check(Number.isInteger(n) && n >= 0, 'the number of reports must be a non-negative integer', { field: 'n', expected: 'an integer >= 0', found: String(n) });
  check(borderlineShare >= 0 && borderlineShare <= 1, 'borderlineShare is a fraction', { field: 'borderlineShare', expected: 'a number in [0, 1]', found: String(borderlineShare) });
  const root = new Rng(seed).split('auditor');
  const targetRng = root.split('targets');
  const planRng = root.split('plans');
  const valueRng = root.split('values');
  // Targets in fixed proportions, shuffled. Healthy is drawn less often: the borderline reports of
  // every other category that land below their threshold become Healthy, so the labels even out.
  const weights = AUDIT_CATEGORIES.map((c) => TARGET_WEIGHT[c] ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const targets: AuditCategory[] = [];
  for (let i = 0; i < n; i++) {
    let at = ((i + 0.5) / n) * total;
    let c = 0;
    while (at > weights[c]! && c < weights.length - 1) at -= weights[c++]!;
    targets.push(AUDIT_CATEGORIES[c]!);
  }
  targetRng.shuffle(targets);
  return targets.map((target, index) => {
    const plan = makePlan(planRng, target, borderlineShare);
    const report = sampleReport(valueRng, plan);
    return { index, report, audit: referenceAudit(report), plan };
  });
}

/**
 * The threshold a report's value lies within the borderline margin of (closest first, relative to
 * the margin), or null: how tests and notebooks count borderline cases, whatever the plan was.
 */
export function nearestThreshold(r: AuditReport): { name: BorderlineName; value: number; threshold: number } | null {
  const valueOf = (name: BorderlineName): number | undefined => {
    switch (name) {
      case 'auc_severe':
        return r.auc;
      case 'drift_minor':
      case 'drift_major':
        return r.drift;
      case 'ece':
        return r.ece;
      case 'missing_rate':
        return r.missing_rate;
      case 'integrity_issues':
        return r.data_integrity_issues;
      case 'train_eval_gap':
        return r.train_eval_gap ?? (r.train_auc !== undefined ? r.train_auc - r.auc : undefined);
      case 'pos_rate_low':
      case 'pos_rate_high':
        return r.pos_rate;
      case 'label_shift':
        return r.label_shift;
    }
  };
  let best: { name: BorderlineName; value: number; threshold: number; score: number } | null = null;
  for (const name of BORDERLINE_NAMES) {
    const v = valueOf(name);
    if (v === undefined) continue;
    const t = THRESHOLDS[name];
    const score = Math.abs(v - t) / BORDERLINE_MARGIN[name];
    // Integer counts are "near" only one step below or at the threshold.
    const within = name === 'integrity_issues' ? v === t - 1 || v === t : score <= 1 + 1e-9;
    if (within && (best === null || score < best.score)) best = { name, value: v, threshold: t, score };
  }
  return best === null ? null : { name: best.name, value: best.value, threshold: best.threshold };
}
