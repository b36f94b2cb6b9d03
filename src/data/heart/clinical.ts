/**
 * Clinical readings of the heart failure features: the thresholds the narratives and answers cite,
 * written once so both agree. Ranges are the usual adult reference ranges:
 * - ejection fraction: < 30% severely reduced, 30–40% reduced, 41–49% mildly reduced, ≥ 50% preserved;
 * - serum sodium: < 135 mEq/L hyponatraemia, > 145 mEq/L hypernatraemia;
 * - serum creatinine: above ~1.2 mg/dL (men) / 1.1 mg/dL (women) suggests kidney dysfunction
 *   (1.2 when sex is not given);
 * - creatinine phosphokinase (CPK): above 120 mcg/L is above normal;
 * - platelets: < 150,000/µL low, > 450,000/µL high.
 */
import type { HeartFeature } from './records.ts';

export type Reading = 'severely reduced' | 'reduced' | 'mildly reduced' | 'preserved' | 'low' | 'normal' | 'high';

/** The name each feature goes by in answers ("Missing information: ..."); parseRiskAnswer maps back. */
export const FEATURE_NAMES: Readonly<Record<HeartFeature, string>> = {
  age: 'age',
  sex: 'sex',
  anaemia: 'anaemia status',
  diabetes: 'diabetes status',
  high_blood_pressure: 'blood pressure history',
  smoking: 'smoking status',
  ejection_fraction: 'ejection fraction',
  serum_creatinine: 'serum creatinine',
  serum_sodium: 'serum sodium',
  creatinine_phosphokinase: 'creatinine phosphokinase (CPK)',
  platelets: 'platelet count',
  time: 'follow-up time',
};

export function efReading(ef: number): Reading {
  if (ef < 30) return 'severely reduced';
  if (ef <= 40) return 'reduced';
  if (ef < 50) return 'mildly reduced';
  return 'preserved';
}

export function sodiumReading(na: number): Reading {
  return na < 135 ? 'low' : na > 145 ? 'high' : 'normal';
}

/** Upper limit of normal serum creatinine (mg/dL) by sex (1 = male, 0 = female, undefined = not given). */
export function creatinineUpperLimit(sex: number | undefined): number {
  return sex === 0 ? 1.1 : 1.2;
}

export function creatinineReading(cr: number, sex: number | undefined): Reading {
  return cr > creatinineUpperLimit(sex) ? 'high' : 'normal';
}

export function cpkReading(cpk: number): Reading {
  return cpk > 120 ? 'high' : 'normal';
}

export function plateletReading(p: number): Reading {
  return p < 150000 ? 'low' : p > 450000 ? 'high' : 'normal';
}

/** The fixed wording of a reading inside an answer's key factors. */
export function readingWords(feature: HeartFeature, reading: Reading): string {
  switch (feature) {
    case 'ejection_fraction':
      return reading;
    case 'serum_sodium':
      return reading === 'low' ? 'hyponatraemia' : reading === 'high' ? 'hypernatraemia' : 'normal';
    case 'serum_creatinine':
      return reading === 'high' ? 'elevated, suggests kidney dysfunction' : 'normal';
    case 'creatinine_phosphokinase':
      return reading === 'high' ? 'above normal' : 'normal';
    case 'platelets':
      return reading === 'low' ? 'low' : reading === 'high' ? 'high' : 'normal';
    default:
      return reading;
  }
}

/** The reading of a numeric feature with a clinical threshold; undefined for the others. */
export function readingOf(feature: HeartFeature, values: Partial<Record<HeartFeature, number>>): Reading | undefined {
  const v = values[feature];
  if (v === undefined) return undefined;
  switch (feature) {
    case 'ejection_fraction':
      return efReading(v);
    case 'serum_sodium':
      return sodiumReading(v);
    case 'serum_creatinine':
      return creatinineReading(v, values.sex);
    case 'creatinine_phosphokinase':
      return cpkReading(v);
    case 'platelets':
      return plateletReading(v);
    default:
      return undefined;
  }
}

/**
 * Whether a stated value is clinically adverse (+1), favourable (−1) or neither (0): abnormal
 * readings and present conditions are adverse. Key factors whose model direction disagrees with
 * this are left out of answers, so an answer never says "elevated creatinine lowers risk".
 */
export function clinicalDirection(feature: HeartFeature, values: Partial<Record<HeartFeature, number>>): -1 | 0 | 1 {
  const v = values[feature];
  if (v === undefined) return 0;
  switch (feature) {
    case 'anaemia':
    case 'diabetes':
    case 'high_blood_pressure':
    case 'smoking':
      return v === 1 ? 1 : -1;
    case 'age':
    case 'sex':
    case 'time':
      return 0;
    default: {
      const r = readingOf(feature, values);
      return r === 'normal' || r === 'preserved' ? -1 : 1;
    }
  }
}
