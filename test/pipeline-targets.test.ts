import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTargets, targetsTable, TASK_TARGETS } from '../src/pipeline/targets.ts';

test('auditor targets: each verdict follows its own metric; a missing metric is not met', () => {
  const good = { accuracy: 0.93, f1_weighted: 0.92, unparseable_rate: 0.005, faithfulness: 0.97, total_ms: 14 * 60_000 };
  assert.ok(checkTargets('auditor', good).every((v) => v.met));
  const slow = checkTargets('auditor', { ...good, total_ms: 16 * 60_000 });
  assert.deepEqual(slow.filter((v) => !v.met).map((v) => v.metric), ['total_ms']);
  const partial = checkTargets('auditor', { accuracy: 0.5 });
  assert.equal(partial.length, TASK_TARGETS.auditor.length);
  assert.ok(partial.every((v) => !v.met));
  assert.equal(partial.find((v) => v.metric === 'faithfulness')!.measured, null);
  const table = targetsTable(slow);
  assert.match(table, /16\.0 min/);
  assert.match(table, /NO/);
});

test("heart-risk AUC target is relative to the run's own logistic baseline", () => {
  const v = (auc: number, base: number) => checkTargets('heart-risk', { auc, baseline_auc: base, missing_f1: 1 }).find((x) => x.metric === 'auc')!;
  assert.equal(v(0.70, 0.74).met, true);
  assert.equal(v(0.68, 0.74).met, false);
  assert.ok(Math.abs(v(0.68, 0.74).bound! - 0.69) < 1e-12);
  assert.equal(checkTargets('heart-risk', { auc: 0.9, missing_f1: 1 }).find((x) => x.metric === 'auc')!.met, false, 'no baseline, no verdict');
});

test('alpacare: the filtered violation rate must be exactly zero', () => {
  const m = { violation_rate: 0.03, disclaimer_rate: 0.97, filtered_violation_rate: 0.01 };
  assert.deepEqual(checkTargets('alpacare', m).filter((v) => !v.met).map((v) => v.metric), ['filtered_violation_rate']);
});
