/**
 * A handbook of clinical-model monitoring, generated from a seeded template grammar, for the base
 * model's pretraining text.
 *
 * Why it exists: words that occur only in the auditor's answers ("Category", the eight labels,
 * "Explanation", the remedies) would otherwise never be prediction targets while the base trains,
 * so their lm_head rows stay at their random init and LoRA alone has to lift them (FACTS.md,
 * "Learnability of the auditor task at nano scale"). Here they appear as targets many times.
 *
 * What it must never hold (the leakage contract, tested in test/pretrain-corpus.test.ts):
 * - no number at all — in particular none of the rule thresholds (THRESHOLDS in
 *   src/data/auditor/rules.ts): the handbook says what a metric means and which way is bad, never
 *   where a category starts;
 * - nothing tied to a report: no report JSON, no report values, no sentence of the auditor's
 *   explanation templates or of the heart-risk answers;
 * - not the rule priority order (which category wins when several apply).
 */
import type { Rng } from '../util/random.ts';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

interface Term {
  names: readonly string[];
  definitions: readonly string[];
  reading: readonly string[];
}

/** The report's metrics, in words. */
export const METRIC_TERMS: readonly Term[] = [
  {
    names: ['AUC', 'ROC AUC', 'the area under the ROC curve'],
    definitions: [
      'measures discrimination: how well the model ranks patients with the outcome above patients without it',
      'is the probability that a randomly chosen positive case receives a higher score than a randomly chosen negative case',
      'summarises the ROC curve, which plots sensitivity against the false positive rate over all thresholds',
    ],
    reading: [
      'A value near one half means the model separates the classes no better than chance, and higher is better.',
      'Low discrimination means the ranking of patients carries little information.',
      'Because it ignores the decision threshold, it can stay stable while calibration degrades.',
    ],
  },
  {
    names: ['accuracy'],
    definitions: ['is the share of predictions that are correct at the operating threshold', 'counts correct positive and negative predictions over all cases'],
    reading: ['With a rare outcome, accuracy can look high while the minority class is missed.', 'Accuracy alone hides class imbalance.'],
  },
  {
    names: ['precision', 'positive predictive value'],
    definitions: ['is the share of predicted positives that are truly positive', 'tells how often an alert raised by the model is correct'],
    reading: ['Low precision means many false alarms.', 'Precision falls when the outcome becomes rarer at a fixed threshold.'],
  },
  {
    names: ['recall', 'sensitivity'],
    definitions: ['is the share of true positives that the model detects', 'tells how many patients with the outcome the model catches'],
    reading: ['Low recall means missed cases, which is often the costliest error in clinical use.', 'Recall depends on the decision threshold.'],
  },
  {
    names: ['F1', 'the F1 score', 'the F-score'],
    definitions: ['is the harmonic mean of precision and recall', 'balances false alarms against missed cases in one number'],
    reading: ['It is low whenever either precision or recall is low.'],
  },
  {
    names: ['ECE', 'expected calibration error', 'the calibration error'],
    definitions: [
      'measures calibration: the average gap between predicted risk and observed outcome rate over bins of predictions',
      'compares what the model predicts with what actually happens, bin by bin',
    ],
    reading: [
      'A high ECE means predicted probabilities no longer match observed rates, even if the ranking is still good.',
      'Lower is better; a well calibrated model has an ECE close to zero.',
    ],
  },
  {
    names: ['the Brier score', 'Brier'],
    definitions: ['is the mean squared error of the predicted probability against the observed outcome', 'scores probabilistic predictions, combining calibration and discrimination'],
    reading: ['Lower is better.', 'It rises when predictions are miscalibrated or uninformative.'],
  },
  {
    names: ['PSI drift', 'the population stability index', 'the drift score', 'PSI'],
    definitions: [
      'compares the distribution of the model inputs in deployment with their distribution in the training data',
      'measures how far the patient population has moved away from the population the model was trained on',
    ],
    reading: [
      'A rising drift score means the model is being applied to patients unlike those it learned from.',
      'Small drift calls for closer monitoring; large drift means the training data no longer represent the population.',
    ],
  },
  {
    names: ['the missing rate', 'missingness'],
    definitions: ['is the share of feature values that are missing in the evaluation data', 'counts how many input values never arrived'],
    reading: ['A jump in missingness usually points to a broken feed, not to a change in patients.', 'High missingness makes every other metric unreliable.'],
  },
  {
    names: ['label shift', 'prior shift'],
    definitions: ['is the change of the positive rate against the training data', 'measures how much the outcome prevalence has moved since training'],
    reading: ['Under label shift a threshold tuned for the old prevalence gives the wrong trade-off between precision and recall.'],
  },
  {
    names: ['the positive rate', 'the outcome rate', 'prevalence'],
    definitions: ['is the share of cases with the outcome in the evaluation data', 'tells how common the outcome is'],
    reading: ['A very low or very high positive rate leaves one class with few examples.'],
  },
  {
    names: ['data integrity issues', 'failed data-quality checks'],
    definitions: ['count the data-quality checks that failed: schema, value ranges, duplicates and units', 'are the problems the data pipeline reports about its own inputs'],
    reading: ['Any such issue means the inputs may be wrong, whatever the model metrics say.'],
  },
  {
    names: ['the train-eval gap', 'the generalisation gap'],
    definitions: ['is the training AUC minus the evaluation AUC', 'compares performance on the training data with performance on new data'],
    reading: ['A large gap is the signature of overfitting: the model memorised its training data.'],
  },
  {
    names: ['train AUC', 'the training AUC'],
    definitions: ['is the AUC measured on the data the model was fitted on'],
    reading: ['It is always optimistic; compare it with the evaluation AUC.'],
  },
];

interface CategoryCard {
  name: string;
  what: readonly string[];
  causes: readonly string[];
  remedies: readonly string[];
}

/** General descriptions of the eight audit categories: what, why, what to do (no thresholds). */
export const CATEGORY_CARDS: readonly CategoryCard[] = [
  {
    name: 'Healthy',
    what: ['the model performs as intended and no monitoring signal is raised', 'discrimination, calibration and the input data all look as expected'],
    causes: ['a stable population and a working data pipeline'],
    remedies: ['keep the routine monitoring schedule', 'nothing beyond routine monitoring is required'],
  },
  {
    name: 'Minor Drift',
    what: ['the input population has moved a little away from the training data while performance still holds', 'a moderate shift in the inputs is visible but the model still works'],
    causes: ['seasonal changes, a new referral pattern or a gradual change in practice'],
    remedies: ['more frequent audits, a look at which features moved and retraining on recent data prepared in case the shift keeps growing', 'a shorter monitoring interval and a watch on whether the shift continues'],
  },
  {
    name: 'Major Drift',
    what: ['the patient population has changed substantially since training', 'the model is applied to a population it was not trained on'],
    causes: ['a new hospital site, a new patient group, a changed coding system or new equipment'],
    remedies: ['retraining on recent data from the population now served, followed by revalidation', 'a model refitted on recent data and validated again before clinical use'],
  },
  {
    name: 'Calibration Failure',
    what: ['predicted probabilities no longer match observed outcome rates although the ranking may still be acceptable', 'the model is miscalibrated: its risks are systematically too high or too low'],
    causes: ['a change in prevalence, a change in treatment, or a model trained on a different setting'],
    remedies: ['recalibration of the probabilities, for example Platt scaling or isotonic regression fitted on recent data', 'recalibration with Platt scaling or isotonic regression, then a calibration check before use'],
  },
  {
    name: 'Data Integrity Issues',
    what: ['the input data are broken: values are missing, out of range or wrongly coded', 'the data pipeline delivers faulty inputs, so no metric can be trusted'],
    causes: ['a failed interface, a schema change upstream, a unit change or a bug in feature extraction'],
    remedies: ['an audit of the data pipeline, from the source systems through feature extraction, before any result is trusted', 'repairing the upstream feeds and only then evaluating the model again'],
  },
  {
    name: 'Overfitting (Train>>Test)',
    what: ['the model does much better on its training data than on new data', 'training performance far exceeds evaluation performance'],
    causes: ['too many features for too few patients, too little regularisation or training for too long'],
    remedies: ['retraining with more regularisation, more patients and early stopping', 'simpler models, regularisation and early stopping, followed by a new evaluation'],
  },
  {
    name: 'Class Imbalance Problem',
    what: ['one outcome class is so rare that the model and its threshold serve it poorly', 'the balance between positive and negative cases has become extreme or has moved'],
    causes: ['a rare outcome, a changed case mix or a shift in outcome prevalence'],
    remedies: ['class weights or resampling during training and a decision threshold tuned for the rare class', 'rebalancing the training data and moving the decision threshold'],
  },
  {
    name: 'Severe Failure',
    what: ['the model has failed and must not be used for clinical decisions', 'discrimination has collapsed or several serious problems occur together'],
    causes: ['a combination of broken data, a changed population and an unsuitable model'],
    remedies: ['a rollback to the last validated model and a full review', 'taking the model out of use, restoring the last validated version and reviewing everything'],
  },
];

interface Remedy {
  names: readonly string[];
  does: readonly string[];
}

export const REMEDIES: readonly Remedy[] = [
  { names: ['Platt scaling'], does: ['fits a logistic curve that maps the model scores to calibrated probabilities', 'recalibrates scores with a two-parameter logistic fit on held-out data'] },
  { names: ['isotonic regression'], does: ['fits a monotone step function from scores to observed rates', 'recalibrates probabilities without assuming a parametric shape'] },
  { names: ['retraining on recent data', 'retraining'], does: ['refits the model on data from the current population', 'brings the model up to date with the patients it now serves'] },
  { names: ['auditing the data pipeline', 'a pipeline audit'], does: ['checks schemas, feature extraction, units and missing-value handling end to end', 'finds where inputs are lost or corrupted before they reach the model'] },
  { names: ['class weights', 'resampling'], does: ['give the rare class more influence during training', 'rebalance the training signal between positive and negative cases'] },
  { names: ['regularisation', 'early stopping'], does: ['limits how closely the model can fit its training data', 'trades a little training fit for better generalisation'] },
  { names: ['rollback', 'rolling back'], does: ['returns to the last validated model version while the failure is investigated', 'removes a failed model from use and restores a validated one'] },
  { names: ['threshold tuning', 'retuning the decision threshold'], does: ['moves the operating point to restore the intended balance of precision and recall'] },
  { names: ['closer monitoring', 'more frequent monitoring'], does: ['shortens the interval between audits so that a trend is caught early'] },
];

const HEADINGS = ['Glossary of clinical model monitoring', 'Monitoring handbook', 'Terms used in model audits', 'Clinical AI monitoring: definitions', 'Notes on model performance reports'];

function metricEntry(rng: Rng, t: Term): string {
  const name = pick(rng, t.names);
  const style = rng.int(3);
  if (style === 0) return `${cap(name)}: ${cap(pick(rng, t.definitions))}. ${pick(rng, t.reading)}`;
  if (style === 1) return `${cap(name)} ${pick(rng, t.definitions)}. ${pick(rng, t.reading)}`;
  return `- ${name}: ${pick(rng, t.definitions)}.`;
}

function categoryCard(rng: Rng, c: CategoryCard): string {
  const style = rng.int(4);
  const what = pick(rng, c.what);
  const remedy = pick(rng, c.remedies);
  if (style === 0) return `Category: ${c.name}\nExplanation: ${cap(what)}. Typical causes are ${pick(rng, c.causes)}. Recommended response: ${remedy}.`;
  if (style === 1) return `Category: ${c.name}\nMeaning: ${cap(what)}.\nRecommendation: ${cap(remedy)}.`;
  if (style === 2) return `${c.name} means that ${what}. ${cap(pick(rng, ['the usual response is', 'the standard advice is', 'what helps is']))} ${remedy}.`;
  return `An audit category is a short label for the state of a model. The category ${c.name} is used when ${what}. In general terms the recommendation is ${remedy}.`;
}

function remedyEntry(rng: Rng, r: Remedy): string {
  const name = pick(rng, r.names);
  return rng.uniform() < 0.5 ? `${cap(name)} ${pick(rng, r.does)}.` : `Q: What does ${name} do?\nA: It ${pick(rng, r.does)}.`;
}

function listOfCategories(rng: Rng): string {
  const names = rng.shuffle(CATEGORY_CARDS.map((c) => c.name));
  const lead = pick(rng, ['The audit categories are', 'A model audit uses eight categories:', 'Reports are sorted into these categories:']);
  return `${lead} ${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}.`;
}

function explanationNote(rng: Rng): string {
  return pick(rng, [
    'An audit answer states the category first and then gives an explanation that cites the numbers of the report.',
    'Each audit ends with a recommendation: what the team should do next.',
    'Category: the label of the audit. Explanation: why the label applies and what to do about it.',
    'A good explanation names the metric that matters, quotes its value from the report and ends with a recommendation.',
  ]);
}

/** One handbook document (a heading and 3–7 entries of mixed kinds). Draws only from `rng`. */
export function glossaryDocument(rng: Rng): string {
  const parts: string[] = [pick(rng, HEADINGS)];
  const n = 3 + rng.int(5);
  for (let i = 0; i < n; i++) {
    const kind = rng.int(10);
    if (kind < 4) parts.push(metricEntry(rng, pick(rng, METRIC_TERMS)));
    else if (kind < 7) parts.push(categoryCard(rng, pick(rng, CATEGORY_CARDS)));
    else if (kind < 9) parts.push(remedyEntry(rng, pick(rng, REMEDIES)));
    else parts.push(rng.uniform() < 0.5 ? listOfCategories(rng) : explanationNote(rng));
  }
  return parts.join('\n\n');
}
