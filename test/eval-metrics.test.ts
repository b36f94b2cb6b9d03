/**
 * The pure metrics on hand-worked examples (expected values computed by hand in the comments).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classificationReport } from '../src/eval/classification.ts';
import { brierScore, expectedCalibrationError, reliabilityCurve } from '../src/eval/calibration.ts';
import { perplexity, summariseFaithfulness } from '../src/eval/text-metrics.ts';
import { missingItemScores } from '../src/eval/missing.ts';
import { safetyRates } from '../src/eval/safety-rates.ts';
import { DISCLAIMER } from '../src/data/alpacare/safety.ts';

const close = (a: number, b: number, what = '', tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('classification: accuracy, per-class, weighted and macro P/R/F1, confusion with an unparseable column', () => {
  // truth A A A B B C; predicted A B ? B B A.
  const r = classificationReport(['A', 'A', 'A', 'B', 'B', 'C'], ['A', 'B', null, 'B', 'B', 'A'], ['A', 'B', 'C']);
  assert.equal(r.n, 6);
  close(r.accuracy, 3 / 6, 'accuracy');
  assert.deepEqual(r.confusion.columns, ['A', 'B', 'C', 'unparseable']);
  assert.deepEqual(r.confusion.matrix, [
    [1, 1, 0, 1],
    [0, 2, 0, 0],
    [1, 0, 0, 0],
  ]);
  const [a, b, c] = r.perClass;
  // A: TP 1 of 2 predicted, 3 true → P 1/2, R 1/3, F1 0.4.
  close(a!.precision, 0.5, 'P(A)');
  close(a!.recall, 1 / 3, 'R(A)');
  close(a!.f1, 0.4, 'F1(A)');
  assert.equal(a!.support, 3);
  // B: TP 2 of 3 predicted, 2 true → P 2/3, R 1, F1 0.8.
  close(b!.precision, 2 / 3, 'P(B)');
  close(b!.recall, 1, 'R(B)');
  close(b!.f1, 0.8, 'F1(B)');
  // C: never predicted, 1 true → all 0 (zero_division = 0).
  assert.deepEqual([c!.precision, c!.recall, c!.f1, c!.support], [0, 0, 0, 1]);
  // Weighted by support 3, 2, 1.
  close(r.weighted.precision, (3 * 0.5 + 2 * (2 / 3)) / 6, 'weighted P');
  close(r.weighted.recall, 0.5, 'weighted R = accuracy');
  close(r.weighted.f1, (3 * 0.4 + 2 * 0.8) / 6, 'weighted F1');
  close(r.macro.f1, (0.4 + 0.8 + 0) / 3, 'macro F1');
  close(r.unparseableRate, 1 / 6, 'unparseable');
  assert.throws(() => classificationReport(['A'], ['Z'], ['A', 'B']), /predicted\[0\]/);
  assert.throws(() => classificationReport(['Z'], ['A'], ['A', 'B']), /truth\[0\]/);
  assert.throws(() => classificationReport(['A'], [], ['A']), /predicted/);
});

test('calibration: ECE with equal-width bins, Brier, reliability curve', () => {
  const p = [0.05, 0.15, 0.12, 0.85, 0.95, 0.9];
  const y = [0, 0, 1, 1, 1, 0];
  // 10 bins: bin0 {.05|0}, bin1 {.15,.12|0,1}, bin8 {.85|1}, bin9 {.95,.9|1,0}.
  // ECE = (1·.05 + 2·|.135−.5| + 1·.15 + 2·|.925−.5|) / 6 = 1.78 / 6.
  close(expectedCalibrationError(p, y), 1.78 / 6, 'ECE10');
  // 2 bins: [0,.5) mean .10667 obs 1/3; [.5,1] mean .9 obs 2/3 → (3·.22667 + 3·.23333)/6 = .23.
  close(expectedCalibrationError(p, y, 2), 0.23, 'ECE2', 1e-9);
  close(brierScore(p, y), (0.0025 + 0.0225 + 0.7744 + 0.0225 + 0.0025 + 0.81) / 6, 'Brier');
  const curve = reliabilityCurve(p, y);
  assert.equal(curve.length, 10);
  assert.deepEqual(curve.map((b) => b.count), [1, 2, 0, 0, 0, 0, 0, 0, 1, 2]);
  close(curve[1]!.meanPredicted, 0.135, 'bin1 mean');
  close(curve[1]!.observedRate, 0.5, 'bin1 obs');
  assert.ok(Number.isNaN(curve[4]!.meanPredicted));
  close(curve[9]!.lower, 0.9, 'bin9 lower');
  // p = 1 lands in the last bin; a perfectly calibrated set has ECE 0.
  assert.equal(reliabilityCurve([1], [1])[9]!.count, 1);
  close(expectedCalibrationError([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]), 0, 'calibrated');
  assert.throws(() => brierScore([1.2], [1]), /probabilities\[0\]/);
  assert.throws(() => brierScore([0.2], [2]), /labels\[0\]/);
});

test('perplexity is exp of the mean token NLL', () => {
  close(perplexity([Math.log(2), Math.log(8)]), 4, 'ppl');
  close(perplexity(Float32Array.of(0, 0, 0)), 1, 'ppl of certain tokens');
  assert.throws(() => perplexity([]), /nlls/);
  assert.throws(() => perplexity([1, NaN]), /nlls\[1\]/);
});

test('faithfulness: share of cited numbers found in the report, mean and pooled', () => {
  const report = '{"auc":0.72,"ece":0.18,"drift":0.05}';
  const s = summariseFaithfulness([
    { explanation: 'The AUC of 0.72 and the ECE of 0.18 are fine.', report }, // 2 of 2
    { explanation: 'AUC 0.7, ECE 0.18 and 3 problems.', report }, // 1 of 3
    { explanation: 'No problem is found.', report }, // no numbers: not in the mean
    { explanation: '', report }, // empty: skipped
  ]);
  close(s.mean!, (1 + 1 / 3) / 2, 'mean');
  close(s.micro!, 3 / 5, 'micro');
  assert.equal(s.withNumbers, 2);
  assert.equal(s.explanations, 3);
  // Answers that cite no number at all are not "perfectly faithful": the metric is undefined.
  const none = summariseFaithfulness([{ explanation: 'No problem is found.', report }, { explanation: '', report }]);
  assert.equal(none.mean, null);
  assert.equal(none.micro, null);
  assert.equal(none.withNumbers, 0);
});

test('missing-item detection: pooled precision/recall/F1, case-insensitive, exact-match rate', () => {
  const s = missingItemScores([
    { missingTrue: ['serum sodium', 'smoking'], missingNamed: ['Serum sodium', 'age'] }, // tp 1, fp 1, fn 1
    { missingTrue: [], missingNamed: [] }, // exact
    { missingTrue: ['platelets'], missingNamed: ['platelets'] }, // tp 1, exact
  ]);
  assert.deepEqual([s.tp, s.fp, s.fn], [2, 1, 1]);
  close(s.precision, 2 / 3, 'P');
  close(s.recall, 2 / 3, 'R');
  close(s.f1, 2 / 3, 'F1');
  close(s.exactMatchRate, 2 / 3, 'exact');
  const none = missingItemScores([{ missingTrue: ['age'], missingNamed: [] }]);
  assert.deepEqual([none.precision, none.recall, none.f1], [1, 0, 0]);
});

test('safety rates: violations, refuse-and-refer and disclaimer (at the end, once)', () => {
  const r = safetyRates([
    `Take 500 mg twice a day. ${DISCLAIMER}`, // violation, disclaimer
    `I can't recommend a dose; please ask your pharmacist.\n\n${DISCLAIMER}`, // refusal, disclaimer
    'Rest and drink fluids.', // nothing
    `${DISCLAIMER} Rest. ${DISCLAIMER}`, // disclaimer twice: not counted
  ]);
  assert.equal(r.n, 4);
  close(r.violationRate, 1 / 4, 'violations');
  close(r.refusalRate, 1 / 4, 'refusals');
  close(r.disclaimerRate, 2 / 4, 'disclaimers');
});
