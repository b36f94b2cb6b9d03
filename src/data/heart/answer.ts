/**
 * The heart-risk target answer and its parser. The format is line-based so an evaluator can read a
 * model's output back:
 *
 *   Risk: high (probability 0.72)
 *   Key factors: ejection fraction 20% (severely reduced, raises risk); age 75 years (raises risk)
 *   Missing information: serum sodium; smoking status            ← only for incomplete inputs
 *   Warning: this estimate is less certain because the items above were not given; ...
 */
import { clinicalDirection, FEATURE_NAMES, readingOf, readingWords } from './clinical.ts';
import type { HeartFeature } from './records.ts';

export type RiskLevel = 'low' | 'moderate' | 'high';

/** Probability thresholds of the levels: low < 0.2 ≤ moderate < 0.5 ≤ high. */
export const RISK_THRESHOLDS = { moderate: 0.2, high: 0.5 } as const;

export function riskLevel(p: number): RiskLevel {
  return p >= RISK_THRESHOLDS.high ? 'high' : p >= RISK_THRESHOLDS.moderate ? 'moderate' : 'low';
}

export const MISSING_WARNING =
  'Warning: this estimate is less certain because the items above were not given; obtain them before relying on it.';

/** One feature's share of the risk model's logit (positive raises the risk). */
export interface FactorContribution {
  feature: HeartFeature;
  logit: number;
}

/**
 * How a factor is named in an answer, in the patient's own values as the narrative wrote them, and
 * its clinical reading when it has one ("ejection fraction 20%", "severely reduced").
 */
export function factorPhrase(
  f: HeartFeature,
  shown: Partial<Record<HeartFeature, number>>,
  rendered: Partial<Record<HeartFeature, string>>,
): { phrase: string; reading?: string } {
  const v = shown[f];
  const plain = (phrase: string): { phrase: string } => ({ phrase });
  switch (f) {
    case 'sex':
      return plain(v === 1 ? 'male sex' : 'female sex');
    case 'anaemia':
      return plain(v === 1 ? 'anaemia' : 'no anaemia');
    case 'diabetes':
      return plain(v === 1 ? 'diabetes' : 'no diabetes');
    case 'high_blood_pressure':
      return plain(v === 1 ? 'high blood pressure' : 'no high blood pressure');
    case 'smoking':
      return plain(v === 1 ? 'smoker' : 'non-smoker');
    case 'age':
      return plain(`age ${rendered.age}`);
    case 'time':
      return plain(`follow-up ${rendered.time}`);
    default: {
      const reading = readingOf(f, shown);
      const name = f === 'creatinine_phosphokinase' ? 'CPK' : FEATURE_NAMES[f];
      const phrase = `${name} ${rendered[f]}`;
      return reading ? { phrase, reading: readingWords(f, reading) } : { phrase };
    }
  }
}

/**
 * The key factors: the features that move the model's logit most (|Δlogit| ≥ 0.15, at most 4, at
 * least 2), largest first, each marked as raising or lowering the risk. A factor whose model
 * direction contradicts its clinical reading (a small artefact of centring at the train mean) is
 * skipped.
 */
export function keyFactors(
  contributions: readonly FactorContribution[],
  shown: Partial<Record<HeartFeature, number>>,
  rendered: Partial<Record<HeartFeature, string>>,
): string[] {
  const ranked = [...contributions]
    .filter((c) => clinicalDirection(c.feature, shown) * Math.sign(c.logit) >= 0)
    .sort((a, b) => Math.abs(b.logit) - Math.abs(a.logit) || (a.feature < b.feature ? -1 : 1));
  const strong = ranked.filter((c) => Math.abs(c.logit) >= 0.15);
  const chosen = (strong.length >= 2 ? strong : ranked.slice(0, 2)).slice(0, 4);
  return chosen.map((c) => {
    const { phrase, reading } = factorPhrase(c.feature, shown, rendered);
    const dir = c.logit >= 0 ? 'raises risk' : 'lowers risk';
    return `${phrase} (${reading ? `${reading}, ` : ''}${dir})`;
  });
}

export interface RiskAnswer {
  level: RiskLevel;
  probability: number;
  factors: string[];
  missing: HeartFeature[];
}

export function formatRiskAnswer(a: RiskAnswer): string {
  const lines = [`Risk: ${a.level} (probability ${a.probability.toFixed(2)})`, `Key factors: ${a.factors.join('; ')}`];
  if (a.missing.length > 0) {
    lines.push(`Missing information: ${a.missing.map((f) => FEATURE_NAMES[f]).join('; ')}`);
    lines.push(MISSING_WARNING);
  }
  return lines.join('\n');
}

export interface ParsedRiskAnswer {
  level: RiskLevel | null;
  probability: number | null;
  factors: string[];
  /** Missing items mapped back to features (items that name no feature are in `unknownMissing`). */
  missing: HeartFeature[];
  unknownMissing: string[];
  /** The answer had a "Risk:" line with a level and a probability in [0, 1]. */
  wellFormed: boolean;
}

const NAME_TO_FEATURE = new Map<string, HeartFeature>(
  (Object.entries(FEATURE_NAMES) as Array<[HeartFeature, string]>).flatMap(([f, name]) => [
    [name.toLowerCase(), f],
    [f.replace(/_/g, ' '), f],
  ]),
);
NAME_TO_FEATURE.set('cpk', 'creatinine_phosphokinase');
NAME_TO_FEATURE.set('creatinine phosphokinase', 'creatinine_phosphokinase');
NAME_TO_FEATURE.set('platelets', 'platelets');

/**
 * Reads an answer back (the model's output or a target). Tolerant: never throws; fields it cannot
 * find are null or empty and `wellFormed` is false.
 */
export function parseRiskAnswer(text: string): ParsedRiskAnswer {
  const out: ParsedRiskAnswer = { level: null, probability: null, factors: [], missing: [], unknownMissing: [], wellFormed: false };
  const risk = /risk:\s*(high|moderate|low)\b[^\n]*?probability\s*(?:of\s*|=\s*|:\s*)?([01](?:\.\d+)?|\.\d+)/i.exec(text);
  const levelOnly = /risk:\s*(high|moderate|low)\b/i.exec(text);
  if (levelOnly) out.level = levelOnly[1]!.toLowerCase() as RiskLevel;
  if (risk) {
    const p = Number(risk[2]);
    if (p >= 0 && p <= 1) out.probability = p;
  }
  out.wellFormed = out.level !== null && out.probability !== null;
  const line = (label: string): string | undefined =>
    new RegExp(`^\\s*${label}:\\s*(.*)$`, 'im').exec(text)?.[1]?.trim().replace(/\.$/, '');
  const factors = line('key factors');
  if (factors) out.factors = factors.split(/;\s*/).filter((s) => s !== '');
  const missing = line('missing information');
  if (missing) {
    for (const item of missing.split(/;\s*|,\s*(?![^()]*\))/)) {
      const key = item.trim().toLowerCase();
      if (key === '') continue;
      const f = NAME_TO_FEATURE.get(key);
      if (f && !out.missing.includes(f)) out.missing.push(f);
      else if (!f) out.unknownMissing.push(item.trim());
    }
  }
  return out;
}
