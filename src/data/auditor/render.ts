/**
 * Prompt and target answer of one auditor sample, and the number helpers behind the faithfulness
 * check. The report is shown as compact JSON: with the Phi-3 tokenizer a typical report is ~133
 * tokens compact against ~190 pretty-printed (2-space indent), and the model reads both equally well.
 *
 * The explanation is built from a small seeded template grammar: a lead sentence naming the finding
 * with the report's own numbers, a context sentence, a priority sentence when lower-priority problems
 * are present too, and a recommendation fitting the category. Thresholds are named in words, never
 * as numbers: every number in an explanation is one printed in the report (faithfulness 1.0).
 */
import type { Rng } from '../../util/random.ts';
import { REQUIRED_KEYS, OPTIONAL_KEYS, type AuditReport, type ReportKey } from './report.ts';
import { AUDIT_CATEGORIES, problemFamilies, type AuditCategory, type AuditReason, type AuditResult, type RuleName } from './rules.ts';

export const AUDITOR_SYSTEM = 'You are an AI auditor analyzing clinical model performance reports.';
export const AUDITOR_INSTRUCTION = 'Instruction: Analyze the clinical model report and classify its health.';

/** The report as it appears in the prompt: compact JSON, keys in report order. */
export function renderReportJson(report: AuditReport): string {
  const ordered: Record<string, number> = {};
  for (const k of [...REQUIRED_KEYS, ...OPTIONAL_KEYS]) if (report[k] !== undefined) ordered[k] = report[k]!;
  return JSON.stringify(ordered);
}

export function renderPrompt(report: AuditReport): { system: string; user: string } {
  return { system: AUDITOR_SYSTEM, user: `${AUDITOR_INSTRUCTION}\n\nReport:\n${renderReportJson(report)}` };
}

/**
 * Numeric literals in `text`, as numbers. Digits glued to letters (F1, Phi-3, report-12) are not
 * numbers; a leading minus counts when it is not a hyphen inside a word.
 */
export function numbersIn(text: string): number[] {
  const re = /(?<![A-Za-z0-9_.-])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![A-Za-z0-9_])/g;
  return [...text.matchAll(re)].map((m) => Number(m[0]));
}

/**
 * Share of the numbers in `explanation` that appear in `report` (the report object or its text);
 * 1 when the explanation has no numbers (nothing unfaithful was said).
 */
export function faithfulness(explanation: string, report: AuditReport | string): number {
  const cited = numbersIn(explanation);
  if (cited.length === 0) return 1;
  const source = new Set(numbersIn(typeof report === 'string' ? report : renderReportJson(report)));
  return cited.filter((x) => source.has(x)).length / cited.length;
}

/** Splits a model's answer into its category (null when none is recognised) and explanation. */
export function parseAnswer(text: string): { category: AuditCategory | null; explanation: string } {
  const m = /Category:\s*(.+?)\s*(?:\n|$)/.exec(text);
  const raw = m?.[1]?.trim() ?? '';
  const category = (AUDIT_CATEGORIES as readonly string[]).includes(raw) ? (raw as AuditCategory) : null;
  const e = /Explanation:\s*([\s\S]*)$/.exec(text);
  return { category, explanation: e?.[1]?.trim() ?? '' };
}

type Say = (options: readonly string[]) => string;

/** Fills `{key}` with the report's value exactly as printed. */
function filler(report: AuditReport): (template: string) => string {
  return (t) =>
    t.replace(/\{(\w+)\}/g, (_m, k: string) => {
      const v = report[k as ReportKey];
      if (v === undefined) throw new Error(`template cites '${k}', which the report does not have`);
      return String(v);
    });
}

const FINDINGS: Record<Exclude<RuleName, 'several_problems'>, readonly string[]> = {
  auc_severe: [
    'the AUC of {auc} is below the minimum acceptable discrimination',
    'discrimination has collapsed to an AUC of {auc}, under the severe-failure limit',
    'an AUC of {auc} means the model barely separates patients with and without the outcome',
  ],
  missing_rate: [
    'the missing rate of {missing_rate} is above the tolerated level of missing data',
    'a missing rate of {missing_rate} breaches the data-integrity limit',
    'missingness has risen to {missing_rate}, past the data-integrity threshold',
  ],
  integrity_issues: [
    '{data_integrity_issues} data integrity issues were flagged, enough to trigger a pipeline audit',
    'the pipeline reported {data_integrity_issues} failed data-quality checks, at or above the audit trigger',
    'there are {data_integrity_issues} data integrity issues, more than the pipeline should ever produce',
  ],
  drift_major: [
    'a drift score (PSI) of {drift} signals a significant population shift',
    'input drift of {drift} is past the major-drift cut-off',
    'the PSI of {drift} shows the patient population has changed substantially since training',
  ],
  pos_rate_low: [
    'a positive rate of only {pos_rate} makes the outcome rare',
    'positives are only {pos_rate} of cases, below the class-imbalance limit',
  ],
  pos_rate_high: [
    'a positive rate of {pos_rate} leaves very few negative cases',
    'the positive rate of {pos_rate} is above the class-imbalance limit, so negatives are rare',
  ],
  label_shift: [
    'a label shift of {label_shift} shows the outcome prevalence has moved since training',
    'the outcome prior has shifted by {label_shift}, past the label-shift limit',
  ],
  train_eval_gap: [
    'the train-eval gap of {train_eval_gap} (train AUC {train_auc} against {auc} on evaluation) exceeds the overfitting limit',
    'training AUC of {train_auc} against an evaluation AUC of {auc} gives a gap of {train_eval_gap}, past the overfitting threshold',
  ],
  ece: [
    'an ECE of {ece} is above the calibration limit',
    'expected calibration error has reached {ece}, past the calibration threshold',
    'the ECE of {ece} shows predicted risks no longer match observed rates',
  ],
  drift_minor: [
    'a drift score of {drift} sits in the moderate-drift band',
    'PSI drift of {drift} shows a moderate shift in the inputs',
    'input drift has reached {drift}, above the monitoring threshold but short of major drift',
  ],
};

// Without train_eval_gap in the report, cite the two AUCs only (the gap would be a new number).
const GAP_WITHOUT_PRINTED_GAP = ['training AUC of {train_auc} against an evaluation AUC of {auc} is past the overfitting threshold'];

const CONTEXT: Record<AuditCategory, readonly string[]> = {
  Healthy: [
    'AUC {auc}, ECE {ece} and drift {drift} are all within limits, with a missing rate of {missing_rate} and {data_integrity_issues} data integrity issues.',
    'Discrimination (AUC {auc}) and calibration (ECE {ece}) are acceptable, drift is low at {drift} and the positive rate of {pos_rate} is stable.',
    'No rule fires: AUC is {auc}, ECE {ece}, drift {drift}, label shift {label_shift} and missing rate {missing_rate}.',
  ],
  'Minor Drift': [
    'Performance still holds (AUC {auc}, ECE {ece}), so this is a warning rather than a failure.',
    'AUC of {auc} and ECE of {ece} remain acceptable for now.',
  ],
  'Major Drift': [
    'AUC is {auc} and ECE {ece}, measured on a population the model was not trained on.',
    'Even with AUC at {auc}, results on a shifted population can degrade quickly.',
  ],
  'Calibration Failure': [
    'Discrimination remains acceptable (AUC {auc}), but the Brier score of {brier} reflects the miscalibration.',
    'The model still ranks patients reasonably (AUC {auc}); the problem is the probabilities themselves (Brier {brier}).',
  ],
  'Data Integrity Issues': [
    'Until the inputs are fixed, metrics such as AUC {auc} and ECE {ece} cannot be trusted.',
    'With broken inputs, the reported AUC of {auc} says little about real performance.',
  ],
  'Overfitting (Train>>Test)': [
    'The model memorised its training data and generalises poorly (evaluation F-score {f1}).',
    'Evaluation performance lags training performance (accuracy {accuracy}, F-score {f1}).',
  ],
  // Replaced by IMBALANCE_CONTEXT, which depends on the kind of imbalance.
  'Class Imbalance Problem': [''],
  'Severe Failure': [
    'Accuracy is {accuracy}, recall {recall} and ECE {ece}; the model cannot be relied on for clinical decisions.',
    'With recall at {recall} and a Brier score of {brier}, predictions are not safe to act on.',
  ],
};

const IMBALANCE_CONTEXT: Record<'pos_rate_low' | 'pos_rate_high' | 'label_shift', readonly string[]> = {
  pos_rate_low: [
    'Accuracy of {accuracy} looks reassuring, but recall is {recall} and precision {precision}.',
    'With recall at {recall} and precision at {precision}, the minority class is poorly served despite accuracy of {accuracy}.',
  ],
  pos_rate_high: [
    'Accuracy of {accuracy} is carried by the majority positive class and says little about the rare negatives.',
    'Precision of {precision} and recall of {recall} mostly reflect the dominant positive class, not the rare negatives.',
  ],
  label_shift: [
    'The decision threshold was tuned for the old prevalence: at a positive rate of {pos_rate}, precision is {precision} and recall {recall}.',
    'With the positive rate now at {pos_rate}, precision ({precision}) and recall ({recall}) no longer reflect the intended operating point.',
  ],
};

/** Why the winning category outranks the other problems present. */
const PRIORITY_WHY: Record<AuditCategory, readonly string[]> = {
  Healthy: [''],
  'Minor Drift': [''],
  'Severe Failure': [''],
  'Data Integrity Issues': ['broken input data makes every other metric unreliable', 'the data must be fixed before any model-level diagnosis is meaningful'],
  'Major Drift': ['a shifted population explains the downstream symptoms', 'the population change has to be addressed first'],
  'Class Imbalance Problem': ['the class balance drives thresholds and calibration', 'fixing the class balance comes before tuning the model'],
  'Overfitting (Train>>Test)': ['a model that does not generalise must be retrained before anything else', 'recalibrating an overfit model would not fix it'],
  'Calibration Failure': ['the miscalibration needs action now while moderate drift only needs watching'],
};

const ACTIONS: Record<AuditCategory, readonly string[]> = {
  Healthy: [
    'Recommendation: continue routine monitoring; no action is needed.',
    'Continue monitoring on the usual schedule.',
    'No intervention is required; keep monitoring as planned.',
  ],
  'Minor Drift': [
    'Recommendation: continue monitoring more frequently, investigate the shifted features and plan retraining on recent data if the drift grows.',
    'Increase monitoring frequency and schedule retraining on recent data should drift continue.',
  ],
  'Major Drift': [
    'Recommendation: retrain on recent data and revalidate before further clinical use.',
    'Retrain the model on recent data from the current population and revalidate it before relying on it.',
  ],
  'Calibration Failure': [
    'Recommendation: recalibrate with Platt scaling or isotonic regression on recent held-out data.',
    'Recalibrate the predicted probabilities (Platt scaling or isotonic regression) and verify calibration before use.',
  ],
  'Data Integrity Issues': [
    'Recommendation: audit the data pipeline (schema, feature extraction, missing-value handling) before trusting any result.',
    'Audit the data pipeline and fix the upstream feeds, then re-run the evaluation.',
  ],
  'Overfitting (Train>>Test)': [
    'Recommendation: retrain with stronger regularisation, more data and early stopping.',
    'Reduce overfitting with regularisation, more training data and early stopping, then re-evaluate.',
  ],
  'Class Imbalance Problem': [
    'Recommendation: address the imbalance with resampling or class weights and tune the decision threshold.',
    'Use resampling or class weights and retune the decision threshold for the minority class.',
  ],
  'Severe Failure': [
    'Recommendation: roll back to the last validated model and start a full review before any further use.',
    'Withdraw the model, roll back to the last validated version and conduct a full review.',
  ],
};

const COUNT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five'];

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function finding(say: Say, r: AuditReason, report: AuditReport): string {
  if (r.rule === 'several_problems') return '';
  if (r.rule === 'train_eval_gap' && report.train_eval_gap === undefined) return say(GAP_WITHOUT_PRINTED_GAP);
  return say(FINDINGS[r.rule]);
}

/** Joins findings, which have commas of their own: "a", "a; and b", "a; b; and c". */
function joinAll(parts: string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join('; ')}; and ${parts[parts.length - 1]}`;
}

/** The explanation text (without the "Explanation:" prefix). */
export function renderExplanation(report: AuditReport, audit: AuditResult, rng: Rng): string {
  const say: Say = (options) => options[rng.int(options.length)]!;
  const fill = filler(report);
  const cat = audit.category;
  const own = audit.reasons.filter((r) => r.category === cat && r.rule !== 'several_problems');
  const others = audit.reasons.filter((r) => r.category !== cat);
  const sentences: string[] = [];

  if (cat === 'Healthy') {
    sentences.push(say(['No threshold of the audit rules is crossed.', 'Every metric is within its limit.', 'The report shows no problem.']));
  } else if (cat === 'Severe Failure' && own.length === 0) {
    // Severe by count: list each family's findings.
    const fams = problemFamilies(audit);
    const parts = others.map((r) => finding(say, r, report));
    sentences.push(`${capitalise(COUNT_WORDS[fams.length] ?? String(fams.length))} problems occur at once: ${joinAll(parts)}.`);
  } else {
    sentences.push(`${capitalise(joinAll(own.map((r) => finding(say, r, report))))}.`);
  }
  const imbalance = own.find((r) => r.rule === 'pos_rate_low' || r.rule === 'pos_rate_high' || r.rule === 'label_shift');
  sentences.push(say(cat === 'Class Imbalance Problem' && imbalance ? IMBALANCE_CONTEXT[imbalance.rule as keyof typeof IMBALANCE_CONTEXT] : CONTEXT[cat]));
  if (cat === 'Severe Failure' && own.length > 0 && others.length > 0) {
    sentences.push(`${say(['Other problems add to it', 'It comes with further problems', 'On top of that'])}: ${joinAll(others.map((r) => finding(say, r, report)))}.`);
  } else if (cat !== 'Severe Failure' && others.length > 0) {
    const lead = say(['In addition', 'There is also a secondary problem', 'A lower-priority issue is present as well']);
    sentences.push(`${lead}: ${joinAll(others.map((r) => finding(say, r, report)))}; ${cat} takes priority because ${say(PRIORITY_WHY[cat])}.`);
  }
  if (report.train_eval_gap !== undefined && cat === 'Healthy' && rng.uniform() < 0.5) {
    sentences.push('The train-eval gap of {train_eval_gap} shows no sign of overfitting.');
  }
  sentences.push(say(ACTIONS[cat]));
  return fill(sentences.join(' '));
}

/** The target answer: `Category: <label>\nExplanation: <text>`. */
export function renderAnswer(report: AuditReport, audit: AuditResult, rng: Rng): string {
  return `Category: ${audit.category}\nExplanation: ${renderExplanation(report, audit, rng)}`;
}
