/**
 * The auditor evaluation: the category parsed from each answer against the reference auditor's
 * label (the one definition of the labels), classification metrics, explanation faithfulness, and
 * baseline rows — the rule-based reference auditor itself (the ceiling: it defines the labels) and
 * the majority class of the evaluated set (the floor a model must beat).
 */
import { CliniloraError } from '../errors.ts';
import { AUDIT_CATEGORIES, referenceAudit, type AuditCategory } from '../data/auditor/rules.ts';
import { validateReport, type AuditReport } from '../data/auditor/report.ts';
import { faithfulness, parseAnswer } from '../data/auditor/render.ts';
import { classificationReport, type ClassificationReport } from './classification.ts';
import { summariseFaithfulness, type FaithfulnessSummary } from './text-metrics.ts';

export interface AuditorPrediction {
  id: string;
  /** The report (object, or its JSON text as in the prompt). */
  report: AuditReport | string;
  /** The model's answer text ("Category: …\nExplanation: …"). */
  answerText: string;
}

export interface AuditorRow {
  id: string;
  truth: AuditCategory;
  predicted: AuditCategory | null;
  correct: boolean;
  /** Share of the explanation's numbers found in the report (null when the explanation is empty). */
  faithfulness: number | null;
  answer: string;
}

export interface AuditorEvaluation {
  n: number;
  model: ClassificationReport;
  faithfulness: FaithfulnessSummary;
  baselines: {
    /** The rule-based reference auditor (src/data/auditor/rules.ts). */
    reference: ClassificationReport;
    /** Always the most frequent true category of this set. */
    majority: ClassificationReport & { label: AuditCategory };
  };
  rows: AuditorRow[];
}

function reportOf(p: AuditorPrediction): AuditReport {
  if (typeof p.report !== 'string') return p.report;
  let value: unknown;
  try {
    value = JSON.parse(p.report);
  } catch (e) {
    throw new CliniloraError('E_FORMAT', `prediction ${p.id}: the report is not JSON`, { field: 'report', hint: (e as Error).message });
  }
  return validateReport(value);
}

export function evaluateAuditor(predictions: readonly AuditorPrediction[]): AuditorEvaluation {
  const reports = predictions.map(reportOf);
  const truth = reports.map((r) => referenceAudit(r).category);
  const parsed = predictions.map((p) => parseAnswer(p.answerText));
  const predicted = parsed.map((p) => p.category);
  const counts = new Map<AuditCategory, number>();
  for (const t of truth) counts.set(t, (counts.get(t) ?? 0) + 1);
  const majority = AUDIT_CATEGORIES.reduce((best, c) => ((counts.get(c) ?? 0) > (counts.get(best) ?? 0) ? c : best), AUDIT_CATEGORIES[0]);
  return {
    n: predictions.length,
    model: classificationReport(truth, predicted, AUDIT_CATEGORIES),
    faithfulness: summariseFaithfulness(parsed.map((p, i) => ({ explanation: p.explanation, report: reports[i]! }))),
    baselines: {
      reference: classificationReport(truth, reports.map((r) => referenceAudit(r).category), AUDIT_CATEGORIES),
      majority: { label: majority, ...classificationReport(truth, truth.map(() => majority), AUDIT_CATEGORIES) },
    },
    rows: predictions.map((p, i) => ({
      id: p.id,
      truth: truth[i]!,
      predicted: predicted[i]!,
      correct: predicted[i] === truth[i],
      faithfulness: parsed[i]!.explanation === '' ? null : faithfulness(parsed[i]!.explanation, reports[i]!),
      answer: p.answerText,
    })),
  };
}
