import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildHeartDataset,
  CLINICAL_FEATURES,
  HEART_CSV_PATH,
  heartBaseline,
  heartMeta,
  loadHeartRecords,
  parseRiskAnswer,
  riskModelInput,
  type HeartFeature,
} from '../src/data/heart/index.ts';
import { fitLogistic, predictProba, rocAuc, bootstrapAuc } from '../src/eval/logistic.ts';
import { findLeakage } from '../src/data/split.ts';
import { loadDataset, writeDataset } from '../src/data/manifest.ts';
import { SPLIT_NAMES, type Sample } from '../src/data/sample.ts';
import { Rng } from '../src/util/random.ts';
import { CliniloraError } from '../src/errors.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-heart-'));
const all = (s: Record<string, Sample[]>): Sample[] => SPLIT_NAMES.flatMap((n) => s[n]!);
/** The narrative part of a prompt (after the fixed instruction). */
const narrative = (s: Sample): string => s.user.split('\n\n').slice(1).join('\n\n');

// Built once: the default dataset (seed 42) is used by several tests.
const base = buildHeartDataset();

test('the shipped CSV loads: 299 patients, 96 deaths, 194 men, and the published means', () => {
  const recs = loadHeartRecords();
  assert.equal(recs.length, 299);
  assert.equal(recs.filter((r) => r.deathEvent === 1).length, 96);
  assert.equal(recs.filter((r) => r.values.sex === 1).length, 194);
  const mean = (f: HeartFeature): number => recs.reduce((s, r) => s + r.values[f], 0) / recs.length;
  // data/SOURCES.md: mean age 60.834, CPK 581.839, EF 38.084, platelets 263358.029
  assert.ok(Math.abs(mean('age') - 60.834) < 1e-3);
  assert.ok(Math.abs(mean('creatinine_phosphokinase') - 581.839) < 1e-3);
  assert.ok(Math.abs(mean('ejection_fraction') - 38.084) < 1e-3);
  assert.ok(Math.abs(mean('platelets') - 263358.029) < 1e-2);
  assert.equal(recs[0]!.line, 2);
  assert.equal(recs[0]!.values.ejection_fraction, 20);
});

function brokenCsv(edit: (lines: string[]) => void): string {
  const lines = readFileSync(HEART_CSV_PATH, 'utf8').split('\r\n');
  edit(lines);
  const file = join(tmp(), 'broken.csv');
  writeFileSync(file, lines.join('\r\n'));
  return file;
}

function assertCsvError(file: string, line: number, column: string, fragment: RegExp): void {
  assert.throws(
    () => loadHeartRecords(file),
    (e: unknown) => {
      assert.ok(e instanceof CliniloraError, String(e));
      assert.equal(e.details.file, file);
      assert.equal(e.details.line, line);
      assert.match(e.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}`));
      assert.match(e.message, new RegExp(column.replace(/[()]/g, '\\$&')));
      assert.match(e.message, fragment);
      return true;
    },
  );
}

test('CSV validation: bad header, non-number, out of range, non-binary, wrong width name file, line and column', () => {
  assertCsvError(brokenCsv((l) => (l[0] = l[0]!.replace('serum_sodium', 'sodium'))), 1, 'column 9', /expected 'serum_sodium'.*found 'sodium'/);
  assertCsvError(
    brokenCsv((l) => (l[5] = l[5]!.replace(/^([^,]*,[^,]*,)[^,]*/, '$1n/a'))),
    6,
    'creatinine_phosphokinase',
    /not a number.*found 'n\/a'/,
  );
  // ejection fraction 150%: a unit or typing error
  assertCsvError(
    brokenCsv((l) => (l[10] = l[10]!.split(',').map((c, i) => (i === 4 ? '150' : c)).join(','))),
    11,
    'ejection_fraction',
    /out of the plausible range.*expected 5\.\.90 %.*found 150/,
  );
  assertCsvError(brokenCsv((l) => (l[3] = l[3]!.split(',').map((c, i) => (i === 10 ? '2' : c)).join(','))), 4, 'smoking', /expected 0 or 1, found 2/);
  assertCsvError(brokenCsv((l) => (l[299] = l[299]!.split(',').slice(0, 12).join(','))), 300, 'row 299', /expected 13 comma-separated numbers, found 12 cells/);
  // LF line endings are fine, and so is a final line ending
  const lf = join(tmp(), 'lf.csv');
  writeFileSync(lf, readFileSync(HEART_CSV_PATH, 'utf8').replace(/\r\n/g, '\n'));
  assert.equal(loadHeartRecords(lf).length, 299);
});

test('determinism: same seed gives the same IDs and bytes on disk; another seed other data', () => {
  const again = buildHeartDataset();
  assert.deepEqual(all(again.splits).map((s) => s.id), all(base.splits).map((s) => s.id));
  assert.equal(again.manifest.sha256, base.manifest.sha256);
  const d1 = join(tmp(), 'a');
  const d2 = join(tmp(), 'b');
  writeDataset(d1, base.splits, base.manifest);
  writeDataset(d2, again.splits, again.manifest);
  for (const f of readdirSync(d1)) assert.deepEqual(readFileSync(join(d1, f)), readFileSync(join(d2, f)), f);
  assert.deepEqual(all(loadDataset(d1).splits).map((s) => s.id), all(base.splits).map((s) => s.id));

  const other = buildHeartDataset({ seed: 7 });
  const ids42 = new Set(all(base.splits).map((s) => s.id));
  const shared = all(other.splits).filter((s) => ids42.has(s.id)).length;
  assert.ok(shared < 20, `seed 7 shares ${shared} samples with seed 42`);
  const testOf = (d: typeof base): string => d.splits.test.map((s) => s.source).sort().join();
  assert.notEqual(testOf(other), testOf(base));
  assert.equal(base.manifest.sources[0]!.sha256, '6869118b4892e7d641d9ac26f57eafcdf3d67913c3bee9edc0afa77318f1bc39');
});

test('splits by patient: no patient in two splits, all variants together, stratified by outcome', () => {
  const leaks = findLeakage(base.splits);
  assert.equal(leaks.sourceLeaks.length, 0);
  assert.equal(leaks.contentLeaks.length, 0);
  const where = new Map<number, Set<string>>();
  for (const name of SPLIT_NAMES) for (const s of base.splits[name]) (where.get(heartMeta(s).patient) ?? where.set(heartMeta(s).patient, new Set()).get(heartMeta(s).patient)!).add(name);
  assert.equal(where.size, 299);
  for (const [p, splits] of where) assert.equal(splits.size, 1, `patient ${p} in ${[...splits].join('+')}`);

  const overall = 96 / 299;
  for (const name of SPLIT_NAMES) {
    const full = base.splits[name].map(heartMeta).filter((m) => m.variant === 'full');
    const rate = full.filter((m) => m.death_event === 1).length / full.length;
    assert.ok(Math.abs(rate - overall) < 0.03, `${name} death rate ${rate.toFixed(3)}`);
  }
  const patients = (n: 'train' | 'validation' | 'test'): number => base.splits[n].filter((s) => heartMeta(s).variant === 'full').length;
  assert.ok(Math.abs(patients('train') - 0.7 * 299) <= 2 && Math.abs(patients('test') - 0.15 * 299) <= 2);
});

test('the follow-up time is excluded by default and present only with includeTime', () => {
  for (const s of all(base.splits)) {
    assert.doesNotMatch(s.user, /follow-up period was|followed up for|follow-up lasted|follow-up \d|\d+ days/i);
    assert.doesNotMatch(s.answer, /follow-up \d/);
  }
  assert.deepEqual(base.manifest.options.features, [...CLINICAL_FEATURES]);
  assert.doesNotMatch(base.splits.train[0]!.system, /follow-up time/);
  const withTime = buildHeartDataset({ includeTime: true, incomplete: 10 });
  assert.equal(withTime.manifest.options.include_time, true);
  for (const s of all(withTime.splits)) assert.ok(s.user.includes(`${heartMeta(s).values.time} days`), s.user);
  assert.match(withTime.splits.train[0]!.system, /follow-up time/);
});

test('no outcome in the input', () => {
  for (const s of all(base.splits)) assert.doesNotMatch(narrative(s), /death|died|deceased|surviv|DEATH_EVENT|outcome/i);
});

/** Words that reveal a feature in a narrative; checked present in full variants, absent when dropped. */
const MENTIONS: Record<Exclude<HeartFeature, 'time'>, RegExp> = {
  age: /year|aged|\bage\b|\d+ y\b/i,
  sex: /\b([Mm]an|[Ww]oman|[Mm]ale|[Ff]emale|[Hh]e|[Ss]he|[Hh]is|[Hh]er|M|F)\b/,
  anaemia: /anaemia/i,
  diabetes: /diabet|\bDM\b/i,
  high_blood_pressure: /blood pressure|hypertension|\bHTN\b/i,
  smoking: /smok/i,
  ejection_fraction: /ejection|\bL?VEF\b|\bEF\b/i,
  serum_creatinine: /creatinine(?! phosphokinase)|\bCr\b/i,
  serum_sodium: /sodium|\bNa\b/i,
  creatinine_phosphokinase: /CPK|phosphokinase/i,
  platelets: /platelet|\bPlt\b/i,
};

test('incomplete variants: default 100, 1–3 items dropped, narratives omit them, answers name exactly them', () => {
  const samples = all(base.splits);
  const incomplete = samples.filter((s) => heartMeta(s).variant === 'incomplete');
  assert.equal(incomplete.length, 100);
  for (const s of samples) {
    const m = heartMeta(s);
    const text = narrative(s);
    for (const f of CLINICAL_FEATURES) {
      const re = MENTIONS[f as Exclude<HeartFeature, 'time'>];
      if (m.missing.includes(f)) assert.doesNotMatch(text, re, `${f} dropped but mentioned: ${text}`);
      else assert.match(text, re, `${f} stated but not found: ${text}`);
    }
    const parsed = parseRiskAnswer(s.answer);
    assert.deepEqual([...parsed.missing].sort(), [...m.missing].sort());
    assert.deepEqual(parsed.unknownMissing, []);
    if (m.variant === 'incomplete') {
      assert.ok(m.missing.length >= 1 && m.missing.length <= 3);
      assert.match(s.answer, /\nWarning: /);
    } else {
      assert.equal(m.missing.length, 0);
      assert.doesNotMatch(s.answer, /Missing information|Warning/);
    }
  }
  const sizes = new Set(incomplete.map((s) => heartMeta(s).missing.length));
  assert.deepEqual([...sizes].sort(), [1, 2, 3]);
  assert.equal(all(buildHeartDataset({ incomplete: 37 }).splits).filter((s) => heartMeta(s).variant === 'incomplete').length, 37);
  assert.equal(all(buildHeartDataset({ incomplete: 0 }).splits).length, 299);
});

test('narratives vary: many distinct skeletons and sentence shapes, all three styles', () => {
  const full = all(base.splits).filter((s) => heartMeta(s).variant === 'full');
  const skeleton = (t: string): string => t.replace(/\d[\d,.]*/g, '#');
  const skeletons = new Set(full.map((s) => skeleton(narrative(s))));
  assert.ok(skeletons.size > 250, `${skeletons.size} distinct narrative skeletons of ${full.length}`);
  const sentences = new Set(full.flatMap((s) => skeleton(narrative(s)).split(/(?<=\.)\s+|\n/)));
  assert.ok(sentences.size > 300, `${sentences.size} distinct sentence skeletons`);
  const styles = new Set(full.map((s) => heartMeta(s).style));
  assert.deepEqual([...styles].sort(), ['list', 'note', 'prose']);
  // units are written in more than one way
  const text = full.map(narrative).join('\n');
  for (const unit of ['mg/dL', 'µmol/L', 'mEq/L', 'mmol/L', '×10⁹/L', '/µL']) assert.ok(text.includes(unit), unit);
});

test('clinical context: severe EF, hyponatraemia and high creatinine are named as such', () => {
  for (const s of all(base.splits)) {
    const m = heartMeta(s);
    const t = narrative(s);
    if (!m.missing.includes('ejection_fraction') && m.values.ejection_fraction < 30) assert.match(t, /severely/, t);
    if (!m.missing.includes('serum_sodium') && m.values.serum_sodium < 135) assert.match(t, /hyponatraemia|below the normal range/, t);
    if (!m.missing.includes('serum_creatinine') && !m.missing.includes('sex') && m.values.serum_creatinine > 1.2) {
      assert.match(t, /kidney/, t);
    }
  }
});

test('targets: parseable, level matches the probability, probability from a model fitted on train only', () => {
  for (const s of all(base.splits)) {
    const m = heartMeta(s);
    const p = parseRiskAnswer(s.answer);
    assert.ok(p.wellFormed, s.answer);
    assert.equal(p.level, m.risk_level);
    assert.equal(p.probability, m.risk_probability);
    assert.equal(p.level, p.probability! >= 0.5 ? 'high' : p.probability! >= 0.2 ? 'moderate' : 'low');
    assert.ok(p.factors.length >= 2 && p.factors.length <= 4, s.answer);
    assert.doesNotMatch(s.answer, /(elevated|severely reduced|hyponatraemia)[^;]*lowers risk/, s.answer);
  }
  // Refit independently on the train patients' full records: the full variants' targets must match.
  const trainFull = base.splits.train.map(heartMeta).filter((m) => m.variant === 'full');
  const row = (m: ReturnType<typeof heartMeta>): number[] => CLINICAL_FEATURES.map((f) => riskModelInput(f, m.values[f]));
  const model = fitLogistic(trainFull.map(row), trainFull.map((m) => m.death_event), CLINICAL_FEATURES, { l2: 1 });
  for (const s of all(base.splits)) {
    const m = heartMeta(s);
    if (m.variant === 'full') assert.equal(m.risk_probability, Math.round(predictProba(model, row(m)) * 100) / 100);
  }
  // A model that had seen the test labels would give different targets on test patients.
  const everyone = all(base.splits).map(heartMeta).filter((m) => m.variant === 'full');
  const leaky = fitLogistic(everyone.map(row), everyone.map((m) => m.death_event), CLINICAL_FEATURES, { l2: 1 });
  const testFull = base.splits.test.map(heartMeta).filter((m) => m.variant === 'full');
  assert.ok(testFull.some((m) => m.risk_probability !== Math.round(predictProba(leaky, row(m)) * 100) / 100));
});

test('parseRiskAnswer reads model-style outputs and rejects malformed ones', () => {
  const a = parseRiskAnswer(
    'Risk: High (probability 0.7)\nKey factors: ejection fraction 20% (severely reduced, raises risk); age 80 years (raises risk)\nMissing information: serum sodium; creatinine phosphokinase (CPK), smoking status\nWarning: ...',
  );
  assert.equal(a.level, 'high');
  assert.equal(a.probability, 0.7);
  assert.equal(a.factors.length, 2);
  assert.deepEqual(a.missing, ['serum_sodium', 'creatinine_phosphokinase', 'smoking']);
  assert.ok(a.wellFormed);
  const b = parseRiskAnswer('The patient is probably fine.');
  assert.equal(b.wellFormed, false);
  assert.equal(b.level, null);
  assert.equal(parseRiskAnswer('Risk: low (probability 1.7)').probability, null);
  assert.deepEqual(parseRiskAnswer('Risk: low (probability 0.1)\nMissing information: shoe size').unknownMissing, ['shoe size']);
});

test('rocAuc on hand-worked examples', () => {
  // positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs won 1 + 1 + 1 + 0 = 3 of 4
  assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.equal(rocAuc([1, 2, 3], [0, 1, 1]), 1);
  assert.equal(rocAuc([3, 2, 1], [0, 1, 1]), 0);
  assert.equal(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5); // all ties
  // one tie between a positive and a negative counts one half: (1 + 0.5) / 2
  assert.equal(rocAuc([0.2, 0.6, 0.6], [0, 0, 1]), 0.75);
  assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [1, 1])));
  const ci = bootstrapAuc([0.1, 0.4, 0.35, 0.8, 0.3, 0.9], [0, 0, 1, 1, 0, 1], { resamples: 300 });
  assert.ok(ci.lower <= ci.auc && ci.auc <= ci.upper);
});

test('logistic regression: gradient zero at the optimum, recovers a known model', () => {
  const rng = new Rng(5);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const a = rng.normal();
    const b = rng.normal() * 10 + 50; // unstandardised on purpose
    const logit = -0.5 + 1.5 * a - 0.08 * (b - 50);
    x.push([a, b]);
    y.push(rng.uniform() < 1 / (1 + Math.exp(-logit)) ? 1 : 0);
  }
  const l2 = 0.5;
  const m = fitLogistic(x, y, ['a', 'b'], { l2 });
  // true weights on standardised features: 1.5 · sd(a) ≈ 1.5, −0.08 · sd(b) ≈ −0.8
  assert.ok(Math.abs(m.weights[0]! - 1.5) < 0.15, String(m.weights));
  assert.ok(Math.abs(m.weights[1]! + 0.8) < 0.12, String(m.weights));
  const grad = [0, 0, 0];
  x.forEach((r, i) => {
    const r0 = predictProba(m, r) - y[i]!;
    grad[0]! += r0;
    grad[1]! += (r0 * (r[0]! - m.mean[0]!)) / m.std[0]!;
    grad[2]! += (r0 * (r[1]! - m.mean[1]!)) / m.std[1]!;
  });
  grad[1]! += l2 * m.weights[0]!;
  grad[2]! += l2 * m.weights[1]!;
  for (const g of grad) assert.ok(Math.abs(g) < 1e-6, String(grad));
});

test('heart baseline on seed 42: test AUC above 0.65 with a bootstrap interval', () => {
  const b = heartBaseline(base.splits, { resamples: 500 });
  assert.equal(b.evalPatients, base.splits.test.filter((s) => heartMeta(s).variant === 'full').length);
  assert.ok(b.auc > 0.65, `AUC ${b.auc}`);
  assert.ok(b.aucLower < b.auc && b.auc < b.aucUpper);
  assert.ok(b.accuracy > 0.6);
  assert.ok(!b.features.includes('time'));
});
