/**
 * The heart-risk dataset: one narrative per patient plus incomplete variants (1–3 features dropped),
 * split by patient (a patient's variants never straddle splits), stratified by outcome.
 *
 * Where the target probability comes from: a logistic regression fitted on the TRAIN patients only
 * (never on validation/test labels), on the features the narrative states. An incomplete variant
 * gets the probability of a model refitted (on the same train patients) on just the features it
 * states, so every target is a function of its own input. Levels follow RISK_THRESHOLDS.
 */
import { fitLogistic, logitContributions, predictProba, type LogisticModel } from '../../eval/logistic.ts';
import { CliniloraError } from '../../errors.ts';
import { Rng } from '../../util/random.ts';
import { buildManifest, sourceFile, type SplitManifest } from '../manifest.ts';
import { makeSample, type Sample, type SplitName } from '../sample.ts';
import { assertNoLeakage, splitSamples, type SplitRatios, type Splits } from '../split.ts';
import { FEATURE_NAMES } from './clinical.ts';
import { formatRiskAnswer, keyFactors, riskLevel, RISK_THRESHOLDS, type RiskLevel } from './answer.ts';
import { heartNarrative, type NarrativeStyle } from './narrative.ts';
import { CLINICAL_FEATURES, HEART_CSV_DISPLAY_PATH, HEART_CSV_PATH, loadHeartRecords, type HeartFeature, type HeartRecord } from './records.ts';

export const HEART_GENERATOR_VERSION = '1';
export const HEART_DEFAULT_RATIOS: SplitRatios = { train: 0.7, validation: 0.15, test: 0.15 };
/** L2 penalty of the risk model (on standardised features). */
export const HEART_RISK_L2 = 1;

export interface HeartBuildOptions {
  seed?: number;
  /** Incomplete variants (1–3 clinical features dropped), default 100. */
  incomplete?: number;
  /** Mention the follow-up time (days). Off by default: it leaks the outcome (see the data card). */
  includeTime?: boolean;
  ratios?: SplitRatios;
  /** Another copy of the UCI CSV (default: the shipped data/heart_failure_clinical_records.csv). */
  csvPath?: string;
}

/** What an evaluator needs from a sample, kept in `sample.meta` (never in the prompt). */
export interface HeartMeta {
  patient: number;
  death_event: 0 | 1;
  variant: 'full' | 'incomplete';
  /** Features left out of this narrative (empty for full variants). */
  missing: HeartFeature[];
  risk_level: RiskLevel;
  risk_probability: number;
  style: NarrativeStyle;
  /** All the patient's recorded values (including dropped ones and time), for baselines. */
  values: Record<HeartFeature, number>;
}

export interface HeartDataset {
  splits: Splits;
  manifest: SplitManifest;
  /** The risk model on all stated features, fitted on the train patients. */
  riskModel: LogisticModel;
}

export const HEART_USER_INSTRUCTION = "Assess this heart failure patient's risk of death during the follow-up period.";

export function heartSystemPrompt(features: readonly HeartFeature[]): string {
  const items = features.map((f) => FEATURE_NAMES[f]);
  return [
    'You are a clinical decision-support assistant for heart failure. From a patient description, estimate the risk of death during follow-up.',
    `A complete description gives: ${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}.`,
    "Answer in this format: 'Risk: <high|moderate|low> (probability <0.00-1.00>)', then 'Key factors:' with the patient's own values,",
    "and, if any item is missing, 'Missing information:' naming each missing item, then a 'Warning:' line.",
    'This supports, and does not replace, a clinician’s judgement.',
  ].join(' ');
}

/**
 * The risk model's input for a feature: CPK and serum creatinine are strongly right-skewed (CPK
 * 23–7861), so the model sees their logarithm; everything else as recorded.
 */
export function riskModelInput(f: HeartFeature, v: number): number {
  return f === 'creatinine_phosphokinase' || f === 'serum_creatinine' ? Math.log(v) : v;
}

export const patientSource = (patient: number): string => `heart:patient-${String(patient).padStart(3, '0')}`;

export function buildHeartDataset(opts: HeartBuildOptions = {}): HeartDataset {
  const seed = opts.seed ?? 42;
  const incomplete = opts.incomplete ?? 100;
  const includeTime = opts.includeTime ?? false;
  const ratios = opts.ratios ?? HEART_DEFAULT_RATIOS;
  const csvPath = opts.csvPath ?? HEART_CSV_PATH;
  const records = loadHeartRecords(csvPath);
  // 1–3 of 11 features give 231 drop sets a patient; 20 variants a patient is already far past useful.
  if (!Number.isInteger(incomplete) || incomplete < 0 || incomplete > records.length * 20) {
    throw new CliniloraError('E_CONFIG', 'incomplete must be a non-negative integer, at most 20 per patient', {
      field: 'incomplete',
      expected: `0..${records.length * 20}`,
      found: String(incomplete),
    });
  }
  const features: HeartFeature[] = includeTime ? [...CLINICAL_FEATURES, 'time'] : [...CLINICAL_FEATURES];
  const system = heartSystemPrompt(features);
  const root = new Rng(seed);

  // 1. Patients to splits first (the risk model must see train patients only). One stand-in sample
  //    per patient, the same source keys and strata as the final samples, so the core assigns them alike.
  const stand = records.map((r) =>
    makeSample('heart-risk', { system: '', user: `patient ${r.patient}`, answer: '', source: patientSource(r.patient), meta: { death_event: r.deathEvent } }),
  );
  const stratify = (s: Sample): string => String(s.meta.death_event);
  const patientSplits = splitSamples(stand, { seed, ratios, stratify });
  const splitOf = new Map<string, SplitName>();
  for (const name of ['train', 'validation', 'test'] as const) for (const s of patientSplits[name]) splitOf.set(s.source, name);
  const train = records.filter((r) => splitOf.get(patientSource(r.patient)) === 'train');
  if (train.length < 10 || new Set(train.map((r) => r.deathEvent)).size < 2) {
    throw new CliniloraError('E_CONFIG', 'the train split is too small to fit the risk model', {
      field: 'ratios',
      expected: 'at least 10 train patients with both outcomes',
      found: `${train.length} patients`,
    });
  }

  // 2. Risk models by feature subset, fitted on train patients only (cached: at most a few hundred).
  const models = new Map<string, LogisticModel>();
  const modelFor = (fs: readonly HeartFeature[]): LogisticModel => {
    const key = fs.join(',');
    let m = models.get(key);
    if (!m) {
      m = fitLogistic(
        train.map((r) => fs.map((f) => riskModelInput(f, r.values[f]))),
        train.map((r) => r.deathEvent),
        fs,
        { l2: HEART_RISK_L2 },
      );
      models.set(key, m);
    }
    return m;
  };

  // 3. Which patients get incomplete variants, and what they lose (distinct (patient, dropped) pairs).
  const plan = planIncomplete(records, incomplete, root.split('heart-incomplete'));

  const narrRng = root.split('heart-narrative');
  const sampleFor = (r: HeartRecord, dropped: HeartFeature[], variant: number): Sample => {
    const stated = features.filter((f) => !dropped.includes(f));
    const values: Partial<Record<HeartFeature, number>> = {};
    for (const f of stated) values[f] = r.values[f];
    const n = heartNarrative(values, narrRng.split(`patient-${r.patient}:${variant}`));
    const model = modelFor(stated);
    const row = stated.map((f) => riskModelInput(f, r.values[f]));
    const probability = Math.round(predictProba(model, row) * 100) / 100;
    const contributions = logitContributions(model, row).map((logit, j) => ({ feature: stated[j]!, logit }));
    const missing = CLINICAL_FEATURES.filter((f) => dropped.includes(f));
    const level = riskLevel(probability);
    const answer = formatRiskAnswer({ level, probability, factors: keyFactors(contributions, n.shown, n.rendered), missing });
    const meta: HeartMeta = {
      patient: r.patient,
      death_event: r.deathEvent,
      variant: dropped.length === 0 ? 'full' : 'incomplete',
      missing,
      risk_level: level,
      risk_probability: probability,
      style: n.style,
      values: r.values,
    };
    return makeSample('heart-risk', {
      system,
      user: `${HEART_USER_INSTRUCTION}\n\n${n.text}`,
      answer,
      source: patientSource(r.patient),
      meta: meta as unknown as Record<string, unknown>,
    });
  };

  const samples: Sample[] = [];
  for (const r of records) {
    samples.push(sampleFor(r, [], 0));
    (plan.get(r.patient) ?? []).forEach((dropped, i) => samples.push(sampleFor(r, dropped, i + 1)));
  }

  // 4. The final split; it must agree with the patient assignment the risk model was fitted on.
  const splits = splitSamples(samples, { seed, ratios, stratify });
  for (const name of ['train', 'validation', 'test'] as const) {
    for (const s of splits[name]) {
      if (splitOf.get(s.source) !== name) {
        throw new CliniloraError('E_FORMAT', `heart-risk: ${s.source} moved from ${splitOf.get(s.source)} to ${name} between passes`, {
          hint: 'splitSamples must assign groups by source key and stratum only',
        });
      }
    }
  }
  assertNoLeakage(splits, 'heart-risk');

  const manifest = buildManifest(
    {
      task: 'heart-risk',
      seed,
      ratios,
      generator: { name: 'clinilora/heart-risk', version: HEART_GENERATOR_VERSION },
      options: {
        incomplete,
        include_time: includeTime,
        features,
        risk_model: { kind: 'logistic-regression', fitted_on: 'train', log_features: ['creatinine_phosphokinase', 'serum_creatinine'], l2: HEART_RISK_L2, thresholds: RISK_THRESHOLDS },
      },
      sources: [sourceFile(csvPath, opts.csvPath ?? HEART_CSV_DISPLAY_PATH)],
      dropped: {},
    },
    splits,
  );
  return { splits, manifest, riskModel: modelFor(features) };
}

/** Chooses `count` incomplete variants: patients in a seeded order (cycling), 1–3 clinical features each. */
function planIncomplete(records: readonly HeartRecord[], count: number, rng: Rng): Map<number, HeartFeature[][]> {
  const plan = new Map<number, HeartFeature[][]>();
  const seen = new Set<string>();
  let order: number[] = [];
  for (let made = 0; made < count; ) {
    if (order.length === 0) order = rng.shuffle(records.map((r) => r.patient));
    const patient = order.shift()!;
    for (let attempt = 0; attempt < 20; attempt++) {
      const k = 1 + rng.int(3);
      const chosen = rng.shuffle([...CLINICAL_FEATURES]).slice(0, k);
      const dropped = CLINICAL_FEATURES.filter((f) => chosen.includes(f)); // canonical order
      const key = `${patient}:${dropped.join(',')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      plan.set(patient, [...(plan.get(patient) ?? []), dropped]);
      made++;
      break;
    }
  }
  return plan;
}

/** Reads a heart-risk sample's meta back with its type (throws if it is not a heart-risk sample). */
export function heartMeta(s: Sample): HeartMeta {
  const m = s.meta as Partial<HeartMeta>;
  if (s.task !== 'heart-risk' || typeof m.patient !== 'number' || !m.values || (m.death_event !== 0 && m.death_event !== 1)) {
    throw new CliniloraError('E_FORMAT', `sample ${s.id} is not a heart-risk sample with patient meta`, { field: 'meta' });
  }
  return m as HeartMeta;
}
