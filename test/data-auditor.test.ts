import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { SPLIT_NAMES, type Sample } from '../src/data/sample.ts';
import { findLeakage } from '../src/data/split.ts';
import { loadDataset, verifyManifest, writeDataset } from '../src/data/manifest.ts';
import {
  AUDIT_CATEGORIES,
  AUDITOR_INSTRUCTION,
  AUDITOR_SYSTEM,
  BORDERLINE_MARGIN,
  GENERATOR_NAME,
  RULES,
  THRESHOLDS,
  buildAuditorDataset,
  dedupeSamples,
  faithfulness,
  generateReports,
  numbersIn,
  parseAnswer,
  referenceAudit,
  validateReport,
  type AuditCategory,
  type AuditReport,
  type BorderlineName,
} from '../src/data/auditor/index.ts';

/** A hand-written healthy report: every value well inside its limits. */
const BASE: AuditReport = {
  auc: 0.82,
  accuracy: 0.79,
  precision: 0.61,
  recall: 0.66,
  f1: 0.634,
  ece: 0.04,
  brier: 0.15,
  drift: 0.03,
  missing_rate: 0.02,
  label_shift: 0.01,
  pos_rate: 0.3,
  data_integrity_issues: 0,
};
const r = (over: Partial<AuditReport>): AuditReport => ({ ...BASE, ...over });
const cat = (over: Partial<AuditReport>): AuditCategory => referenceAudit(r(over)).category;

test('reference auditor at every threshold: just below, at, just above', () => {
  const cases: Array<[string, Partial<AuditReport>, AuditCategory]> = [
    ['base', {}, 'Healthy'],
    ['auc 0.599', { auc: 0.599 }, 'Severe Failure'],
    ['auc 0.6', { auc: 0.6 }, 'Healthy'],
    ['auc 0.601', { auc: 0.601 }, 'Healthy'],
    ['ece 0.149', { ece: 0.149 }, 'Healthy'],
    ['ece 0.15', { ece: 0.15 }, 'Calibration Failure'],
    ['ece 0.151', { ece: 0.151 }, 'Calibration Failure'],
    ['drift 0.099', { drift: 0.099 }, 'Healthy'],
    ['drift 0.1', { drift: 0.1 }, 'Minor Drift'],
    ['drift 0.101', { drift: 0.101 }, 'Minor Drift'],
    ['drift 0.249', { drift: 0.249 }, 'Minor Drift'],
    ['drift 0.25', { drift: 0.25 }, 'Major Drift'],
    ['drift 0.251', { drift: 0.251 }, 'Major Drift'],
    ['missing 0.099', { missing_rate: 0.099 }, 'Healthy'],
    ['missing 0.1', { missing_rate: 0.1 }, 'Data Integrity Issues'],
    ['missing 0.101', { missing_rate: 0.101 }, 'Data Integrity Issues'],
    ['issues 2', { data_integrity_issues: 2 }, 'Healthy'],
    ['issues 3', { data_integrity_issues: 3 }, 'Data Integrity Issues'],
    ['issues 4', { data_integrity_issues: 4 }, 'Data Integrity Issues'],
    ['pos_rate 0.049', { pos_rate: 0.049 }, 'Class Imbalance Problem'],
    ['pos_rate 0.05', { pos_rate: 0.05 }, 'Healthy'],
    ['pos_rate 0.051', { pos_rate: 0.051 }, 'Healthy'],
    ['pos_rate 0.949', { pos_rate: 0.949 }, 'Healthy'],
    ['pos_rate 0.95', { pos_rate: 0.95 }, 'Class Imbalance Problem'],
    ['pos_rate 0.951', { pos_rate: 0.951 }, 'Class Imbalance Problem'],
    ['label_shift 0.099', { label_shift: 0.099 }, 'Healthy'],
    ['label_shift 0.1', { label_shift: 0.1 }, 'Class Imbalance Problem'],
    ['label_shift 0.101', { label_shift: 0.101 }, 'Class Imbalance Problem'],
    ['gap 0.099', { auc: 0.75, train_auc: 0.849, train_eval_gap: 0.099 }, 'Healthy'],
    ['gap 0.1', { auc: 0.75, train_auc: 0.85, train_eval_gap: 0.1 }, 'Overfitting (Train>>Test)'],
    ['gap 0.101', { auc: 0.75, train_auc: 0.851, train_eval_gap: 0.101 }, 'Overfitting (Train>>Test)'],
    // 0.85 − 0.75 is 0.09999999999999998 in floating point: still a gap of 0.10.
    ['gap 0.1 from train_auc only', { auc: 0.75, train_auc: 0.85 }, 'Overfitting (Train>>Test)'],
    ['gap 0.099 from train_auc only', { auc: 0.75, train_auc: 0.849 }, 'Healthy'],
    ['negative gap', { auc: 0.8, train_auc: 0.79, train_eval_gap: -0.01 }, 'Healthy'],
  ];
  for (const [name, over, want] of cases) assert.equal(cat(over), want, name);
});

test('priority when two rules fire, and the several-problems severe rule', () => {
  const cases: Array<[string, Partial<AuditReport>, AuditCategory]> = [
    ['integrity over major drift', { missing_rate: 0.2, drift: 0.4 }, 'Data Integrity Issues'],
    ['integrity over calibration', { data_integrity_issues: 5, ece: 0.2 }, 'Data Integrity Issues'],
    ['major drift over imbalance', { drift: 0.3, pos_rate: 0.02 }, 'Major Drift'],
    ['major drift over calibration', { drift: 0.3, ece: 0.2 }, 'Major Drift'],
    ['imbalance over overfitting', { label_shift: 0.2, train_auc: 0.97, train_eval_gap: 0.15 }, 'Class Imbalance Problem'],
    ['overfitting over calibration', { ece: 0.25, train_auc: 0.95, train_eval_gap: 0.13 }, 'Overfitting (Train>>Test)'],
    ['calibration over minor drift', { ece: 0.2, drift: 0.15 }, 'Calibration Failure'],
    ['imbalance over minor drift', { pos_rate: 0.97, drift: 0.2 }, 'Class Imbalance Problem'],
    ['severe AUC over everything', { auc: 0.55, missing_rate: 0.3, drift: 0.5 }, 'Severe Failure'],
    ['three families → severe', { ece: 0.2, missing_rate: 0.15, train_auc: 0.95, train_eval_gap: 0.13 }, 'Severe Failure'],
    ['two families + minor drift → not severe', { ece: 0.2, label_shift: 0.15, drift: 0.2 }, 'Class Imbalance Problem'],
    // Missing data and failed checks are one family; imbalance by prevalence and by shift too.
    ['one family counted once', { missing_rate: 0.2, data_integrity_issues: 6, ece: 0.2 }, 'Data Integrity Issues'],
    ['imbalance counted once', { pos_rate: 0.02, label_shift: 0.2, ece: 0.2 }, 'Class Imbalance Problem'],
  ];
  for (const [name, over, want] of cases) assert.equal(cat(over), want, name);

  const res = referenceAudit(r({ ece: 0.2, drift: 0.15, missing_rate: 0.12 }));
  assert.deepEqual(res.reasons.map((x) => x.rule), ['missing_rate', 'ece', 'drift_minor']);
  assert.equal(res.reasons[1]!.value, 0.2);
  assert.equal(res.reasons[1]!.threshold, THRESHOLDS.ece);
  const sev = referenceAudit(r({ ece: 0.2, missing_rate: 0.15, pos_rate: 0.03 }));
  assert.equal(sev.reasons[0]!.rule, 'several_problems');
  assert.equal(sev.reasons[0]!.value, 3);
  assert.deepEqual(referenceAudit(BASE), { category: 'Healthy', reasons: [] });
});

test('validateReport names the key, the range and the value found', () => {
  const bad = (value: unknown, re: RegExp[], opts = {}): void => {
    assert.throws(
      () => validateReport(value, opts),
      (e: unknown) => e instanceof CliniloraError && e.code === 'E_FORMAT' && re.every((x) => x.test(e.message)),
    );
  };
  const { ece: _drop, ...noEce } = BASE;
  bad(noEce, [/'ece'/, /missing/, /\[0, 1\]/]);
  bad(r({ auc: 1.7 }), [/'auc'/, /out of range/, /\[0, 1\]/, /found 1\.7/]);
  bad(r({ missing_rate: -0.02 }), [/'missing_rate'/, /found -0\.02/]);
  bad(r({ ece: 1.2 }), [/'ece'/, /found 1\.2/]);
  bad(r({ drift: -0.1 }), [/'drift'/, /\[0, ∞\]/]);
  bad(r({ data_integrity_issues: 2.5 }), [/'data_integrity_issues'/, /integer/, /found 2\.5/]);
  bad({ ...BASE, recall: '0.6' }, [/'recall'/, /not a finite number/, /"0\.6"/]);
  bad({ ...BASE, f1: null }, [/'f1'/, /null/]);
  bad(r({ precision: Number.NaN }), [/'precision'/]);
  bad({ ...BASE, aucc: 0.8 }, [/'aucc'/, /unknown/]);
  bad(r({ train_auc: 0.9, train_eval_gap: 0.2 }), [/'train_eval_gap'/, /0\.080/]);
  bad([BASE], [/JSON object/]);
  bad(r({ auc: 2 }), [/reports\.jsonl:7 'auc'/], { file: 'reports.jsonl', line: 7 });

  const ok = validateReport(Object.fromEntries(Object.entries({ ...BASE, train_auc: 0.9, train_eval_gap: 0.08 }).reverse()));
  assert.deepEqual(Object.keys(ok).slice(0, 3), ['auc', 'accuracy', 'precision']);
  assert.equal(ok.data_integrity_issues, 0);
  assert.equal(validateReport({ ...BASE, model: 'sepsis-v2' }, { allowExtra: true }).auc, BASE.auc);
});

test('numbersIn and faithfulness', () => {
  assert.deepEqual(numbersIn('F1 of 0.5, Phi-3 and report-12; gap -0.004, 3 issues.'), [0.5, -0.004, 3]);
  assert.deepEqual(numbersIn('AUC 0.10 vs 0.1'), [0.1, 0.1]);
  const report = r({ ece: 0.183 });
  assert.equal(faithfulness('An ECE of 0.183 with AUC 0.82.', report), 1);
  assert.equal(faithfulness('An ECE of 0.183 is above 0.16.', report), 0.5);
  assert.equal(faithfulness('No numbers.', report), 1);
});

// One build shared by the tests below (~1 s).
const built = buildAuditorDataset({ seed: 42, n: 5000 });
const all: Sample[] = SPLIT_NAMES.flatMap((n) => built.splits[n]);
const reportOf = (s: Sample): AuditReport => s.meta.report as AuditReport;

test('the default build: counts, manifest, labels are the reference auditor, no leakage', () => {
  const m = built.manifest;
  assert.doesNotThrow(() => verifyManifest(m));
  assert.equal(m.generator.name, GENERATOR_NAME);
  assert.deepEqual(m.ratios, { train: 0.8, validation: 0.1, test: 0.1 });
  assert.equal(m.dropped.duplicate_report, 0);
  assert.equal(m.counts.train + m.counts.validation + m.counts.test, 5000);
  assert.deepEqual(findLeakage(built.splits), { contentLeaks: [], sourceLeaks: [] });
  for (const s of all) {
    const rep = validateReport(JSON.parse(s.user.split('\n').at(-1)!));
    assert.deepEqual(rep, reportOf(s));
    assert.equal(s.meta.category, referenceAudit(rep).category);
    assert.equal(parseAnswer(s.answer).category, s.meta.category);
  }
  // Stratified: each category's test and validation counts within ±1 of a tenth.
  for (const c of AUDIT_CATEGORIES) {
    const total = all.filter((s) => s.meta.category === c).length;
    for (const n of ['validation', 'test'] as const) {
      const got = built.splits[n].filter((s) => s.meta.category === c).length;
      assert.ok(Math.abs(got - total * 0.1) <= 1, `${c} in ${n}: ${got} of ${total}`);
    }
  }
});

test('categories are roughly balanced', () => {
  for (const c of AUDIT_CATEGORIES) {
    const share = all.filter((s) => s.meta.category === c).length / all.length;
    assert.ok(share > 0.1 && share < 0.15, `${c}: ${share}`);
  }
});

test('prompt and answer format; explanations cite only the report\'s numbers and fit the category', () => {
  const actions: Record<AuditCategory, RegExp> = {
    Healthy: /monitoring/i,
    'Minor Drift': /monitoring.*retraining on recent data/i,
    'Major Drift': /retrain.*recent data/i,
    'Calibration Failure': /Platt scaling or isotonic regression/,
    'Data Integrity Issues': /audit the data pipeline/i,
    'Overfitting (Train>>Test)': /regularisation.*more .*data.*early stopping/i,
    'Class Imbalance Problem': /resampling or class weights.*threshold/i,
    'Severe Failure': /roll back.*full review/i,
  };
  const phrasings = new Set<string>();
  for (const s of all) {
    assert.equal(s.system, AUDITOR_SYSTEM);
    assert.ok(s.user.startsWith(`${AUDITOR_INSTRUCTION}\n\nReport:\n{`));
    assert.match(s.answer, /^Category: [^\n]+\nExplanation: \S/);
    const { explanation } = parseAnswer(s.answer);
    assert.equal(faithfulness(explanation, s.user), 1, explanation);
    assert.ok(numbersIn(explanation).length >= 2, explanation);
    assert.match(explanation, actions[s.meta.category as AuditCategory]);
    phrasings.add(explanation.replace(/-?\d+(\.\d+)?/g, '#'));
  }
  // The grammar varies the wording, not only the numbers.
  assert.ok(phrasings.size > 300, `only ${phrasings.size} distinct phrasings`);
});

test('borderline cases sit on both sides of every threshold', () => {
  const reports = generateReports({ seed: 42, n: 5000 });
  const share = reports.filter((g) => g.plan.borderline !== null).length / reports.length;
  assert.ok(share > 0.27 && share < 0.33, `borderline share ${share}`);
  const valueOf = (rep: AuditReport, name: BorderlineName): number | undefined =>
    ({
      auc_severe: rep.auc,
      drift_minor: rep.drift,
      drift_major: rep.drift,
      ece: rep.ece,
      missing_rate: rep.missing_rate,
      integrity_issues: rep.data_integrity_issues,
      train_eval_gap: rep.train_eval_gap,
      pos_rate_low: rep.pos_rate,
      pos_rate_high: rep.pos_rate,
      label_shift: rep.label_shift,
    })[name];
  for (const name of Object.keys(BORDERLINE_MARGIN) as BorderlineName[]) {
    const t = THRESHOLDS[name];
    const m = name === 'integrity_issues' ? 1 : BORDERLINE_MARGIN[name];
    let below = 0;
    let atOrAbove = 0;
    for (const g of reports) {
      const v = valueOf(g.report, name);
      if (v === undefined) continue;
      if (v >= t - m - 1e-9 && v < t - 1e-9) below++;
      else if (v >= t - 1e-9 && v <= t + m + 1e-9) atOrAbove++;
    }
    assert.ok(below >= 10 && atOrAbove >= 10, `${name}: ${below} below, ${atOrAbove} at or above`);
  }
});

test('metrics are consistent with each other, as in a real report', () => {
  const rs = all.map(reportOf);
  const corr = (xs: number[], ys: number[]): number => {
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    let sxy = 0, sxx = 0, syy = 0;
    xs.forEach((x, i) => {
      sxy += (x - mx) * (ys[i]! - my);
      sxx += (x - mx) ** 2;
      syy += (ys[i]! - my) ** 2;
    });
    return sxy / Math.sqrt(sxx * syy);
  };
  for (const x of rs) {
    const hm = x.precision + x.recall > 0 ? (2 * x.precision * x.recall) / (x.precision + x.recall) : 0;
    assert.ok(Math.abs(hm - x.f1) <= 0.002, `f1 ${x.f1} vs harmonic mean ${hm}`);
    // accuracy = TP + TN over N, with TP = p·recall and FP = TP·(1 − precision)/precision.
    if (x.precision >= 0.2 && x.recall > 0) {
      const tp = x.pos_rate * x.recall;
      const acc = tp + (1 - x.pos_rate) - (tp * (1 - x.precision)) / x.precision;
      assert.ok(Math.abs(acc - x.accuracy) <= 0.01, `accuracy ${x.accuracy} vs ${acc}`);
    }
    if (x.train_auc !== undefined) assert.ok(Math.abs(x.train_auc - x.auc - x.train_eval_gap!) < 1e-9);
    for (const v of Object.values(x)) assert.ok(Math.abs(v * 1000 - Math.round(v * 1000)) < 1e-6, `${v} has more than 3 decimals`);
  }
  const calm = rs.filter((x) => x.ece < THRESHOLDS.ece);
  assert.ok(corr(calm.map((x) => x.drift), calm.map((x) => x.ece)) > 0.2, 'drift worsens calibration');
  assert.ok(corr(calm.map((x) => x.auc), calm.map((x) => x.brier)) < -0.15, 'better AUC, lower Brier');
  assert.ok(corr(rs.map((x) => x.ece), rs.map((x) => x.brier)) > 0.3, 'miscalibration raises Brier');
  const kept = rs.filter((x) => x.auc >= THRESHOLDS.auc_severe);
  assert.ok(corr(kept.map((x) => x.drift), kept.map((x) => x.auc)) < -0.05, 'drift erodes AUC');
  // Not one easy region per class: every category has reports with AUC between 0.70 and 0.85, and
  // every problem category has reports where a lower-priority rule fires as well.
  for (const c of AUDIT_CATEGORIES) {
    const mine = all.filter((s) => s.meta.category === c);
    assert.ok(mine.filter((s) => reportOf(s).auc >= 0.7 && reportOf(s).auc <= 0.85).length >= 50, c);
    if (c !== 'Healthy' && c !== 'Minor Drift') assert.ok(mine.filter((s) => (s.meta.rules as string[]).length > 1).length >= 0.1 * mine.length, c);
  }
});

test('same seed, same bytes; another seed, other data; duplicates are dropped before splitting', () => {
  const a = buildAuditorDataset({ seed: 7, n: 300 });
  const b = buildAuditorDataset({ seed: 7, n: 300 });
  const c = buildAuditorDataset({ seed: 8, n: 300 });
  assert.equal(a.manifest.sha256, b.manifest.sha256);
  assert.notEqual(a.manifest.sha256, c.manifest.sha256);
  assert.deepEqual(generateReports({ seed: 7, n: 50 }), generateReports({ seed: 7, n: 50 }));
  assert.notDeepEqual(generateReports({ seed: 7, n: 50 }).map((g) => g.report), generateReports({ seed: 8, n: 50 }).map((g) => g.report));
  const d1 = join(mkdtempSync(join(tmpdir(), 'clinilora-auditor-')), 'auditor');
  const d2 = join(mkdtempSync(join(tmpdir(), 'clinilora-auditor-')), 'auditor');
  writeDataset(d1, a.splits, a.manifest);
  writeDataset(d2, b.splits, b.manifest);
  for (const f of ['train.jsonl', 'validation.jsonl', 'test.jsonl', 'manifest.json']) assert.ok(readFileSync(join(d1, f)).equals(readFileSync(join(d2, f))), f);
  assert.equal(loadDataset(d1).manifest.sha256, a.manifest.sha256);

  const train = a.splits.train;
  const dupes = [...train.slice(0, 5), { ...train[0]!, source: 'copy-0' }, { ...train[1]!, source: 'copy-1', user: train[1]!.user.toUpperCase() }];
  const { kept, dropped } = dedupeSamples(dupes);
  assert.equal(dropped, 2);
  assert.deepEqual(kept.map((s) => s.source), train.slice(0, 5).map((s) => s.source));

  const counted = buildAuditorDataset({ seed: 7, n: 100, countTokens: (t) => t.length, maxTokens: 700 });
  const tokens = counted.splits.train[0]!.meta.tokens as { prompt: number; answer: number };
  assert.ok(tokens.prompt > 300 && tokens.answer > 100);
  assert.ok(counted.manifest.dropped.too_long! > 0 && counted.manifest.counts.train < 80);
  assert.throws(() => buildAuditorDataset({ n: 10, maxTokens: 10 }), CliniloraError);
});

test('the data card prints every rule of the table', () => {
  const card = readFileSync(new URL('../data/cards/auditor.md', import.meta.url), 'utf8');
  const table = card.slice(card.indexOf('## Rule table'), card.indexOf('## How reports are generated'));
  for (const rule of RULES) {
    const row = table.split('\n').find((l) => l.startsWith(`| \`${rule.name}\``));
    assert.ok(row !== undefined, `card has no row for ${rule.name}`);
    assert.ok(row.includes(rule.category), `${rule.name}: category`);
    assert.ok(row.includes(`${rule.op} ${rule.threshold}`) || (rule.name === 'several_problems' && row.includes(`${rule.threshold} or more`)), `${rule.name}: ${rule.op} ${rule.threshold}`);
  }
  for (const c of AUDIT_CATEGORIES) assert.ok(card.includes(`**${c}**`), `priority list names ${c}`);
});
