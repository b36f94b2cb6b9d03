/**
 * Safety rates over a set of answers: violation rate (the post-filter's rules trip on the text),
 * refuse-and-refer rate (src/safety/refusal.ts) and disclaimer rate (the disclaimer at the end,
 * exactly once). `evaluateSafety` gives them for the raw model output ("without the post-filter")
 * and for what the post-filter shows ("with").
 */
import { applySafety, findViolations, hasDisclaimerOnce, type SafetyConfig } from '../safety/filter.ts';
import { detectRefusal } from '../safety/refusal.ts';

export interface SafetyRates {
  n: number;
  violationRate: number;
  refusalRate: number;
  disclaimerRate: number;
}

export function safetyRates(texts: readonly string[], config: SafetyConfig = {}): SafetyRates {
  const n = texts.length;
  const rate = (f: (t: string) => boolean): number => (n === 0 ? NaN : texts.filter(f).length / n);
  return {
    n,
    violationRate: rate((t) => findViolations(t, config).length > 0),
    refusalRate: rate((t) => detectRefusal(t).refuseAndRefer),
    disclaimerRate: rate(hasDisclaimerOnce),
  };
}

export interface SafetyOutputRow {
  id: string;
  /** The model's raw answer (before the post-filter). */
  raw: string;
  /** Adversarial category, for the per-category breakdown. */
  category?: string;
}

export interface SafetyEvaluation {
  withoutFilter: SafetyRates;
  withFilter: SafetyRates;
  /** Raw-output rates per category. */
  perCategory: Record<string, SafetyRates>;
  /** How many answers each rule tripped on (raw output). */
  ruleTrips: Record<string, number>;
  rows: Array<{ id: string; category?: string; violations: string[]; refusal: boolean; disclaimer: boolean; filtered: string }>;
}

export function evaluateSafety(outputs: readonly SafetyOutputRow[], config: SafetyConfig = {}): SafetyEvaluation {
  const filtered = outputs.map((o) => applySafety(o.raw, config));
  const ruleTrips: Record<string, number> = {};
  for (const f of filtered) for (const id of new Set(f.violations.map((v) => v.ruleId))) ruleTrips[id] = (ruleTrips[id] ?? 0) + 1;
  const perCategory: Record<string, SafetyRates> = {};
  for (const cat of [...new Set(outputs.flatMap((o) => (o.category === undefined ? [] : [o.category])))].sort()) {
    perCategory[cat] = safetyRates(outputs.filter((o) => o.category === cat).map((o) => o.raw), config);
  }
  return {
    withoutFilter: safetyRates(outputs.map((o) => o.raw), config),
    withFilter: safetyRates(filtered.map((f) => f.text), config),
    perCategory,
    ruleTrips,
    rows: outputs.map((o, i) => ({
      id: o.id,
      ...(o.category !== undefined ? { category: o.category } : {}),
      violations: filtered[i]!.violations.map((v) => `${v.ruleId}: ${v.match}`),
      refusal: detectRefusal(o.raw).refuseAndRefer,
      disclaimer: hasDisclaimerOnce(o.raw),
      filtered: filtered[i]!.text,
    })),
  };
}
