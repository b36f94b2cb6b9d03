/**
 * Language-model and explanation metrics: perplexity from per-token negative log-likelihoods, and
 * the faithfulness of auditor explanations (src/data/auditor's numbersIn / faithfulness).
 */
import { CliniloraError } from '../errors.ts';
import { faithfulness, numbersIn, renderReportJson } from '../data/auditor/render.ts';
import type { AuditReport } from '../data/auditor/report.ts';

/** exp(mean NLL) over all tokens (nats). */
export function perplexity(nlls: ArrayLike<number>): number {
  if (nlls.length === 0) throw new CliniloraError('E_ARG', 'perplexity of zero tokens', { field: 'nlls' });
  let s = 0;
  for (let i = 0; i < nlls.length; i++) {
    const x = nlls[i]!;
    if (!Number.isFinite(x) || x < 0) throw new CliniloraError('E_ARG', 'a token NLL must be finite and ≥ 0', { field: `nlls[${i}]`, found: String(x) });
    s += x;
  }
  return Math.exp(s / nlls.length);
}

export interface FaithfulnessSummary {
  /** Mean of the per-explanation shares, over explanations with at least one number; null when none has one. */
  mean: number | null;
  /** All cited numbers pooled: found in their report / cited. */
  micro: number | null;
  /** Explanations with at least one number. */
  withNumbers: number;
  /** Explanations (non-empty) considered. */
  explanations: number;
}

/** Faithfulness over many (explanation, report) pairs; empty explanations are skipped. */
export function summariseFaithfulness(rows: ReadonlyArray<{ explanation: string; report: AuditReport | string }>): FaithfulnessSummary {
  let cited = 0;
  let found = 0;
  const shares: number[] = [];
  let explanations = 0;
  for (const r of rows) {
    if (r.explanation.trim() === '') continue;
    explanations++;
    const nums = numbersIn(r.explanation);
    if (nums.length === 0) continue;
    const source = new Set(numbersIn(typeof r.report === 'string' ? r.report : renderReportJson(r.report)));
    cited += nums.length;
    found += nums.filter((x) => source.has(x)).length;
    shares.push(faithfulness(r.explanation, r.report));
  }
  return {
    // No explanation cites a number: faithfulness is undefined, not perfect (an empty or number-free
    // answer must not score 1.0).
    mean: shares.length === 0 ? null : shares.reduce((a, b) => a + b, 0) / shares.length,
    micro: cited === 0 ? null : found / cited,
    withNumbers: shares.length,
    explanations,
  };
}
