/**
 * The auditor's rule table and the rule-based reference auditor. This is the ONE definition of the
 * labels: the generator labels its reports with `referenceAudit`, the evaluator and the notebooks
 * compare against it, and data/cards/auditor.md prints the same table (a test checks the card cites
 * every threshold).
 *
 * Comparisons: an upper limit (drift, ece, missing_rate, …) fires AT the threshold (value >= t); a
 * lower limit (auc, pos_rate low) fires strictly below it (value < t). A 1e-9 tolerance absorbs
 * float error, e.g. 0.85 − 0.75 = 0.09999999999999998 counts as a gap of 0.10.
 */
import type { AuditReport, ReportKey } from './report.ts';

export const AUDIT_CATEGORIES = [
  'Healthy',
  'Minor Drift',
  'Major Drift',
  'Calibration Failure',
  'Data Integrity Issues',
  'Overfitting (Train>>Test)',
  'Class Imbalance Problem',
  'Severe Failure',
] as const;
export type AuditCategory = (typeof AUDIT_CATEGORIES)[number];

/** The thresholds, as data (the card and the tests cite them from here). */
export const THRESHOLDS = {
  /** auc < this: discrimination barely above chance → Severe Failure. */
  auc_severe: 0.6,
  /** This many of the five problem families at once → Severe Failure. */
  severe_problem_count: 3,
  /** drift (PSI) >= this: moderate population shift → Minor Drift (the usual PSI 0.1 band). */
  drift_minor: 0.1,
  /** drift (PSI) >= this: significant population shift → Major Drift (the usual PSI 0.25 band). */
  drift_major: 0.25,
  /** ece >= this → Calibration Failure. */
  ece: 0.15,
  /** missing_rate >= this → Data Integrity Issues. */
  missing_rate: 0.1,
  /** data_integrity_issues >= this → Data Integrity Issues. */
  integrity_issues: 3,
  /** train_auc − auc >= this → Overfitting (Train>>Test). */
  train_eval_gap: 0.1,
  /** pos_rate < this → Class Imbalance Problem (rare outcome). */
  pos_rate_low: 0.05,
  /** pos_rate >= this → Class Imbalance Problem (rare negative class). */
  pos_rate_high: 0.95,
  /** label_shift >= this → Class Imbalance Problem (the outcome prior moved). */
  label_shift: 0.1,
} as const;
export type ThresholdName = keyof typeof THRESHOLDS;

/** Priority when several rules fire: the first category in this list wins. */
export const PRIORITY: readonly AuditCategory[] = [
  'Severe Failure',
  'Data Integrity Issues',
  'Major Drift',
  'Class Imbalance Problem',
  'Overfitting (Train>>Test)',
  'Calibration Failure',
  'Minor Drift',
  'Healthy',
];

/** The five problem families counted by the "several problems at once" severe rule. */
export const PROBLEM_FAMILIES: readonly AuditCategory[] = [
  'Data Integrity Issues',
  'Major Drift',
  'Class Imbalance Problem',
  'Overfitting (Train>>Test)',
  'Calibration Failure',
];

export type RuleName =
  | 'auc_severe'
  | 'several_problems'
  | 'missing_rate'
  | 'integrity_issues'
  | 'drift_major'
  | 'pos_rate_low'
  | 'pos_rate_high'
  | 'label_shift'
  | 'train_eval_gap'
  | 'ece'
  | 'drift_minor';

export interface Rule {
  name: RuleName;
  category: AuditCategory;
  /** The report key it reads ('problem_count' for the severe count rule). */
  key: ReportKey | 'problem_count';
  op: '<' | '>=';
  threshold: number;
  /** Why the rule exists, in words (for the card). */
  why: string;
}

/** The rule table in priority order (the card prints this list). */
export const RULES: readonly Rule[] = [
  { name: 'auc_severe', category: 'Severe Failure', key: 'auc', op: '<', threshold: THRESHOLDS.auc_severe, why: 'discrimination barely above chance: the model is not fit for clinical use' },
  { name: 'several_problems', category: 'Severe Failure', key: 'problem_count', op: '>=', threshold: THRESHOLDS.severe_problem_count, why: 'three or more independent problem families at once: no single fix will do' },
  { name: 'missing_rate', category: 'Data Integrity Issues', key: 'missing_rate', op: '>=', threshold: THRESHOLDS.missing_rate, why: 'a tenth or more of feature values missing: the inputs are not the ones the model was validated on' },
  { name: 'integrity_issues', category: 'Data Integrity Issues', key: 'data_integrity_issues', op: '>=', threshold: THRESHOLDS.integrity_issues, why: 'several failed data-quality checks: the pipeline is broken and every other metric is suspect' },
  { name: 'drift_major', category: 'Major Drift', key: 'drift', op: '>=', threshold: THRESHOLDS.drift_major, why: 'PSI at or above 0.25 is a significant population shift' },
  { name: 'pos_rate_low', category: 'Class Imbalance Problem', key: 'pos_rate', op: '<', threshold: THRESHOLDS.pos_rate_low, why: 'a rare outcome: accuracy hides missed positives' },
  { name: 'pos_rate_high', category: 'Class Imbalance Problem', key: 'pos_rate', op: '>=', threshold: THRESHOLDS.pos_rate_high, why: 'a rare negative class: accuracy hides false alarms' },
  { name: 'label_shift', category: 'Class Imbalance Problem', key: 'label_shift', op: '>=', threshold: THRESHOLDS.label_shift, why: 'the outcome prevalence moved: decision threshold and class weights no longer fit' },
  { name: 'train_eval_gap', category: 'Overfitting (Train>>Test)', key: 'train_eval_gap', op: '>=', threshold: THRESHOLDS.train_eval_gap, why: 'training AUC far above evaluation AUC: the model memorised its training data' },
  { name: 'ece', category: 'Calibration Failure', key: 'ece', op: '>=', threshold: THRESHOLDS.ece, why: 'predicted risks are off by 15 points or more on average: they cannot be read as probabilities' },
  { name: 'drift_minor', category: 'Minor Drift', key: 'drift', op: '>=', threshold: THRESHOLDS.drift_minor, why: 'PSI in the 0.10–0.25 band: a moderate shift to watch' },
];

export interface AuditReason {
  rule: RuleName;
  category: AuditCategory;
  key: ReportKey | 'problem_count';
  /** The value compared (for train_eval_gap: the report's, or train_auc − auc when absent). */
  value: number;
  op: '<' | '>=';
  threshold: number;
  /** True when the value is not printed in the report (a gap computed from train_auc − auc, a count). */
  derived: boolean;
  text: string;
}

export interface AuditResult {
  category: AuditCategory;
  /** Every rule that fired, in priority order (empty for Healthy). */
  reasons: AuditReason[];
}

const EPS = 1e-9;

function fires(op: '<' | '>=', value: number, threshold: number): boolean {
  return op === '<' ? value < threshold - EPS : value >= threshold - EPS;
}

/** The train − eval AUC gap: the report's `train_eval_gap`, else train_auc − auc, else undefined. */
export function trainEvalGap(r: AuditReport): { value: number; derived: boolean } | undefined {
  if (r.train_eval_gap !== undefined) return { value: r.train_eval_gap, derived: false };
  if (r.train_auc !== undefined) return { value: r.train_auc - r.auc, derived: true };
  return undefined;
}

/**
 * The reference auditor: applies every rule of the table, then picks the category by PRIORITY.
 * Minor drift does not fire when major drift does (its band ends at 0.25).
 */
export function referenceAudit(report: AuditReport): AuditResult {
  const reasons: AuditReason[] = [];
  const gap = trainEvalGap(report);
  for (const rule of RULES) {
    if (rule.key === 'problem_count') continue;
    let value: number;
    let derived = false;
    if (rule.key === 'train_eval_gap') {
      if (gap === undefined) continue;
      value = gap.value;
      derived = gap.derived;
    } else {
      const v = report[rule.key];
      if (v === undefined) continue;
      value = v;
    }
    if (!fires(rule.op, value, rule.threshold)) continue;
    if (rule.name === 'drift_minor' && fires('>=', value, THRESHOLDS.drift_major)) continue;
    reasons.push(reason(rule, value, derived));
  }
  const families = PROBLEM_FAMILIES.filter((c) => reasons.some((r) => r.category === c));
  if (families.length >= THRESHOLDS.severe_problem_count) {
    const rule = RULES.find((r) => r.name === 'several_problems')!;
    reasons.push({ ...reason(rule, families.length, true), text: `${families.length} problem families at once (${families.join(', ')}) >= ${rule.threshold}` });
  }
  const rank = (c: AuditCategory): number => PRIORITY.indexOf(c);
  reasons.sort((a, b) => rank(a.category) - rank(b.category) || RULES.findIndex((r) => r.name === a.rule) - RULES.findIndex((r) => r.name === b.rule));
  return { category: reasons[0]?.category ?? 'Healthy', reasons };
}

function reason(rule: Rule, value: number, derived: boolean): AuditReason {
  const shown = derived ? Number(value.toFixed(6)) : value;
  return {
    rule: rule.name,
    category: rule.category,
    key: rule.key,
    value,
    op: rule.op,
    threshold: rule.threshold,
    derived,
    text: `${rule.key} ${shown} ${rule.op} ${rule.threshold}`,
  };
}

/** The categories of the problem families that fired (what the "several problems" rule counts). */
export function problemFamilies(result: AuditResult): AuditCategory[] {
  return PROBLEM_FAMILIES.filter((c) => result.reasons.some((r) => r.category === c));
}
