/**
 * The classical baseline on the same split as the LLM: logistic regression on the numeric features
 * of each patient's full record, fitted on train, scored on test (ROC AUC with a bootstrap interval,
 * accuracy at 0.5). Published reference without follow-up time: random forest AUC ≈ 0.80
 * (Chicco & Jurman 2020, mean of 100 splits).
 */
import { bootstrapAuc, fitLogistic, predictProba, rocAuc, type LogisticModel } from '../../eval/logistic.ts';
import { CliniloraError } from '../../errors.ts';
import { makeSample, type SplitName } from '../sample.ts';
import { splitSamples, type SplitRatios, type Splits } from '../split.ts';
import { heartMeta, HEART_DEFAULT_RATIOS, HEART_RISK_L2, patientSource, riskModelInput, type HeartMeta } from './build.ts';
import { CLINICAL_FEATURES, loadHeartRecords, type HeartFeature } from './records.ts';

export interface HeartBaselineOptions {
  /** Add the follow-up time (leaks the outcome; for comparison with the published 0.82 only). */
  includeTime?: boolean;
  l2?: number;
  /** Seed of the bootstrap. */
  seed?: number;
  resamples?: number;
  /** Split to evaluate on (default test). */
  evalSplit?: SplitName;
}

export interface HeartBaseline {
  features: HeartFeature[];
  trainPatients: number;
  evalPatients: number;
  evalDeaths: number;
  auc: number;
  /** 95% percentile bootstrap interval of the AUC. */
  aucLower: number;
  aucUpper: number;
  /** Accuracy at probability 0.5. */
  accuracy: number;
  model: LogisticModel;
  /** Per evaluated patient: the baseline's probability and the outcome (for comparing with the LLM). */
  predictions: Array<{ patient: number; probability: number; death_event: 0 | 1 }>;
}

/**
 * One full-variant record per patient in a split, in patient order, so the fit and the bootstrap
 * depend on which patients are in the split, not on how the split file happens to be ordered.
 */
function patients(splits: Splits, name: SplitName): HeartMeta[] {
  return splits[name]
    .map(heartMeta)
    .filter((m) => m.variant === 'full')
    .sort((a, b) => a.patient - b.patient);
}

export function heartBaseline(splits: Splits, opts: HeartBaselineOptions = {}): HeartBaseline {
  const features: HeartFeature[] = opts.includeTime ? [...CLINICAL_FEATURES, 'time'] : [...CLINICAL_FEATURES];
  const evalSplit = opts.evalSplit ?? 'test';
  const train = patients(splits, 'train');
  const evalSet = patients(splits, evalSplit);
  if (train.length === 0 || evalSet.length === 0) {
    throw new CliniloraError('E_ARG', 'heart baseline needs full-variant patients in train and in the evaluated split', {
      field: evalSplit,
      found: `${train.length} train, ${evalSet.length} ${evalSplit}`,
    });
  }
  const row = (m: HeartMeta): number[] => features.map((f) => riskModelInput(f, m.values[f]));
  const model = fitLogistic(train.map(row), train.map((m) => m.death_event), features, { l2: opts.l2 ?? HEART_RISK_L2 });
  const predictions = evalSet.map((m) => ({ patient: m.patient, probability: predictProba(model, row(m)), death_event: m.death_event }));
  const scores = predictions.map((p) => p.probability);
  const labels = predictions.map((p) => p.death_event);
  const ci = bootstrapAuc(scores, labels, { seed: opts.seed ?? 42, resamples: opts.resamples ?? 2000 });
  const correct = predictions.filter((p) => (p.probability >= 0.5 ? 1 : 0) === p.death_event).length;
  return {
    features,
    trainPatients: train.length,
    evalPatients: evalSet.length,
    evalDeaths: labels.filter((l) => l === 1).length,
    auc: ci.auc,
    aucLower: ci.lower,
    aucUpper: ci.upper,
    accuracy: correct / predictions.length,
    model,
    predictions,
  };
}

export interface RepeatedBaseline {
  seeds: number[];
  aucs: number[];
  mean: number;
  /** Standard deviation of the test AUC across splits (the split-to-split spread). */
  sd: number;
}

/**
 * The same baseline over many seeded splits (as the published study averaged 100 runs): the mean
 * test AUC says more than any one ~45-patient test split.
 */
export function heartBaselineRepeated(
  opts: { repeats?: number; firstSeed?: number; ratios?: SplitRatios; includeTime?: boolean; csvPath?: string } = {},
): RepeatedBaseline {
  const records = loadHeartRecords(opts.csvPath);
  const features: HeartFeature[] = opts.includeTime ? [...CLINICAL_FEATURES, 'time'] : [...CLINICAL_FEATURES];
  const byPatient = new Map(records.map((r) => [patientSource(r.patient), r]));
  const stand = records.map((r) =>
    makeSample('heart-risk', { system: '', user: `patient ${r.patient}`, answer: '', source: patientSource(r.patient), meta: { death_event: r.deathEvent } }),
  );
  const seeds = Array.from({ length: opts.repeats ?? 50 }, (_, i) => (opts.firstSeed ?? 1) + i);
  const aucs = seeds.map((seed) => {
    const sp = splitSamples(stand, { seed, ratios: opts.ratios ?? HEART_DEFAULT_RATIOS, stratify: (s) => String(s.meta.death_event) });
    const rows = (name: SplitName) => sp[name].map((s) => byPatient.get(s.source)!).sort((a, b) => a.patient - b.patient);
    const train = rows('train');
    const test = rows('test');
    const x = (r: (typeof records)[number]): number[] => features.map((f) => riskModelInput(f, r.values[f]));
    const model = fitLogistic(train.map(x), train.map((r) => r.deathEvent), features, { l2: HEART_RISK_L2 });
    return rocAuc(test.map((r) => predictProba(model, x(r))), test.map((r) => r.deathEvent));
  });
  const mean = aucs.reduce((a, b) => a + b, 0) / aucs.length;
  const sd = Math.sqrt(aucs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, aucs.length - 1));
  return { seeds, aucs, mean, sd };
}
