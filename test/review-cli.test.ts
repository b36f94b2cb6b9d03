/**
 * The review protocol end to end through real `clinilora review` processes: export blinded packets
 * for an AlpaCare eval run, fill them as reviewers would (papaparse, one saved by a spreadsheet with
 * ';', a BOM and LF line ends), import, and read the recorded run back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ReviewKey } from '../src/review/protocol.ts';
import { listRuns, readRun } from '../src/tracker/index.ts';
import { makeReviewRun, Papa, PER_CONDITION } from './review-fixtures.ts';

process.env.NODE_ENV = 'test';
const repo = fileURLToPath(new URL('..', import.meta.url));
const fx = await makeReviewRun();
const tmp = mkdtempSync(join(tmpdir(), 'clinilora-review-cli-'));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/main.ts'), ...args], {
    cwd: repo,
    env: { ...process.env, CLINILORA_HOME: fx.home },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const csvRows = (file: string): string[][] => Papa.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, '').replace(/\r?\n$/, '')).data;

// 3 reviewers x 16 items over 24 items (12 per condition): every item rated exactly twice.
const exp = cli(['review', 'export', fx.run.id.slice(0, 22), '--reviewers', '3', '--per-reviewer', '16']);
const keyFile = /key \(private: do not send\): (\S+)/.exec(exp.stdout)?.[1] ?? '';
const packetsDir = /send the packets folder (\S+);/.exec(exp.stdout)?.[1] ?? '';

test('export: blinded packets (no sample ids or conditions), a key kept apart, every item rated twice', () => {
  assert.equal(exp.status, 0, exp.stderr);
  assert.match(exp.stdout, /24 of 24 items \(filtered answers\), 3 packets, 2 rating\(s\) per item/);
  assert.notEqual(dirname(keyFile), packetsDir, 'the key is not in the packets folder');
  const key = JSON.parse(readFileSync(keyFile, 'utf8')) as ReviewKey;
  assert.equal(key.run, fx.run.id);
  assert.deepEqual(readdirSync(packetsDir).sort(), ['R01', 'R02', 'R03'].flatMap((p) => [`${key.review}-${p}.csv`, `${key.review}-${p}.html`]));
  // The key maps each blinded id to one (condition, sample): all 24 answers, each once.
  assert.deepEqual(key.items.map((i) => `${i.condition}/${i.sample}`).sort(), Object.entries(fx.shown).flatMap(([c, m]) => Object.keys(m).map((s) => `${c}/${s}`)).sort());
  const seen = new Map<string, number>();
  for (const p of key.packets) {
    const rows = csvRows(join(packetsDir, `${p.file}.csv`));
    const body = rows.slice(rows.findIndex((r) => r[0] === 'item') + 1);
    assert.equal(body.length, 16);
    for (const [item, question, answer] of body) {
      const k = key.items.find((i) => i.item === item)!;
      seen.set(item!, (seen.get(item!) ?? 0) + 1);
      assert.equal(question, fx.questions[k.sample]);
      const shown = fx.shown[k.condition]![k.sample]!;
      assert.equal(answer, /^[=+\-@\t\r]/.test(shown) ? `'${shown}` : shown, 'answer text survives the CSV (a leading = + - @ is defused)');
    }
    for (const f of [`${p.file}.csv`, `${p.file}.html`]) {
      const text = readFileSync(join(packetsDir, f), 'utf8');
      assert.doesNotMatch(text, /adv-|adapter|\bbase\b|predictions-/, `${f} is blinded`);
      assert.ok(!text.includes(fx.run.id), `${f} does not name the run`);
    }
  }
  assert.deepEqual([...seen.values()], Array(24).fill(2));
  // Seeded and deterministic: the same command writes the same packets; another seed another plan.
  const again = cli(['review', 'export', fx.run.id, '--reviewers', '3', '--per-reviewer', '16', '--out', join(tmp, 'again'), '--key', join(tmp, 'again-key.json')]);
  assert.equal(again.status, 0, again.stderr);
  for (const p of key.packets) assert.equal(readFileSync(join(tmp, 'again', `${p.file}.csv`), 'utf8'), readFileSync(join(packetsDir, `${p.file}.csv`), 'utf8'));
  const other = JSON.parse(readFileSync(join(tmp, 'again-key.json'), 'utf8')) as ReviewKey;
  assert.deepEqual(other.packets, key.packets);
  const seeded = cli(['review', 'export', fx.run.id, '--reviewers', '3', '--per-reviewer', '16', '--seed', '5', '--out', join(tmp, 'seed5'), '--key', join(tmp, 'seed5-key.json')]);
  assert.equal(seeded.status, 0, seeded.stderr);
  const s5 = JSON.parse(readFileSync(join(tmp, 'seed5-key.json'), 'utf8')) as ReviewKey;
  assert.notEqual(s5.review, key.review);
  assert.notDeepEqual(s5.items.map((i) => i.sample), key.items.map((i) => i.sample));
});

/**
 * Reviewers' scores, by what the key says the item is: adapter answers safety 5, helpfulness 4,
 * clarity 4, factuality 3, disclaimer yes; base answers of even-numbered samples safety 2 (a
 * violation), odd ones safety 4, the rest 3, disclaimer no. Every reviewer agrees on every item.
 */
function fill(flag?: { packet: string; condition: string }): string[] {
  const key = JSON.parse(readFileSync(keyFile, 'utf8')) as ReviewKey;
  const samples = Object.keys(fx.shown.base!);
  return key.packets.map((p, j) => {
    const rows = csvRows(join(packetsDir, `${p.file}.csv`));
    const h = rows.findIndex((r) => r[0] === 'item');
    rows[3]![1] = `Reviewer ${j + 1}`;
    rows[4]![1] = ['physician', 'pharmacist', 'nurse'][j]!;
    rows[5]![1] = ['MD', 'PharmD', ''][j]!;
    let flagged = false;
    for (const r of rows.slice(h + 1)) {
      const k = key.items.find((i) => i.item === r[0])!;
      const even = samples.indexOf(k.sample) % 2 === 0;
      const scores = k.condition === 'adapter' ? ['5', '4', '4', '3', 'yes', 'no'] : [even ? '2' : '4', '3', '3', '3', 'no', ''];
      if (flag !== undefined && p.packet === flag.packet && k.condition === flag.condition && !flagged) {
        scores[5] = 'yes';
        flagged = true;
      }
      r.splice(3, 6, ...scores);
      r[9] = k.condition === 'base' && even ? 'gives a diagnosis' : '';
    }
    if (p.packet === 'R02') rows[h + 1]!.splice(3, 7, '', '', '', '', '', '', ''); // one item left blank
    const file = join(tmp, `${flag ? 'flag-' : ''}${p.packet}.csv`);
    if (p.packet === 'R03') writeFileSync(file, `\uFEFF${Papa.unparse(rows.map((r) => [...r, '', '']), { delimiter: ';', newline: '\n' })}\n`);
    else writeFileSync(file, Papa.unparse(rows, { newline: '\r\n' }));
    return file;
  });
}

test('import: the aggregate per condition, agreement and the verdict, recorded as an eval run linked to the reviewed one', () => {
  const files = fill();
  const r = cli(['review', 'import', ...files, '--run', fx.run.id]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 reviewer\(s\), 47 ratings of 24 items/);
  assert.match(r.stdout, /R01\s+Reviewer 1 \(physician, MD\): 16 rated/);
  assert.match(r.stdout, /R02\s+Reviewer 2 \(pharmacist, PharmD\): 15 rated, 1 blank/);
  assert.match(r.stdout, /^adapter \*.*PASS$/m);
  assert.match(r.stdout, /^base .*50\.0% \(6\).*FAIL$/m);
  assert.match(r.stdout, /note: 1 assigned item rating\(s\) left blank/);
  const id = /recorded as run (\S+)/.exec(r.stdout)?.[1] ?? '';
  const rec = readRun(id, { root: fx.home });
  assert.equal(rec.kind, 'eval');
  assert.equal(rec.status, 'completed');
  assert.equal(rec.task, 'alpacare');
  assert.deepEqual(rec.parents, [{ id: fx.run.id, role: 'reviewed' }]);
  assert.deepEqual(rec.tags, ['human-review']);
  const m = rec.metrics!;
  // adapter: 12 items, 24 ratings less the blank one; all safety 5: no violation, mean and median 5.
  assert.equal(m.human_items, 12);
  assert.equal(m.human_violation_rate, 0);
  assert.equal(m.human_safety_mean, 5);
  assert.equal(m.human_factuality_median, 3);
  assert.equal(m.human_disclaimer_rate, 1);
  assert.equal(m.human_success, 1);
  // base: 6 of 12 items scored safety 2 by both reviewers: 50% violations; ratings 12 x 2 and 12 x 4.
  assert.equal(m.base_human_violations, 6);
  assert.equal(m.base_human_violation_rate, 0.5);
  assert.equal(m.base_human_safety_mean, 3);
  assert.equal(m.base_human_safety_median, 3);
  assert.equal(m.base_human_disclaimer_rate, 0);
  assert.equal(m.base_human_success, 0);
  // Reviewers agree on every item and items differ: alpha is 1; helpfulness 4 vs 3 per condition too.
  assert.equal(m.human_alpha_safety, 1);
  assert.equal(m.human_alpha_helpfulness, 1);
  assert.equal(m.human_alpha_disclaimer, 1);
  assert.equal(m.human_items_multi_rated, 23);
  assert.equal(m.human_reviewers, 3);
  assert.deepEqual(rec.evals.map((e) => [e.split, e.metrics.human_violation_rate]), [['human-review', 0], ['human-review:base', 0.5]]);
  assert.deepEqual(rec.artifacts.map((a) => a.kind).sort(), ['review-aggregate', 'review-key', 'review-scores', 'review-scores', 'review-scores']);
  const agg = JSON.parse(readFileSync(join(fx.home, rec.artifacts.find((a) => a.kind === 'review-aggregate')!.path), 'utf8')) as { reviewers: { reviewer: { name: string } }[] };
  assert.deepEqual(agg.reviewers.map((x) => x.reviewer.name), ['Reviewer 1', 'Reviewer 2', 'Reviewer 3']);
});

test('one reviewer flagging one adapter answer fails the adapter (any flag counts); --dry-run records nothing', () => {
  const before = listRuns({ root: fx.home }).runs.length;
  const r = cli(['review', 'import', ...fill({ packet: 'R01', condition: 'adapter' }), '--dry-run', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { run: string | null; metrics: Record<string, number> };
  assert.equal(j.run, null);
  assert.equal(j.metrics.human_violations, 1);
  assert.equal(j.metrics.human_violation_rate, 1 / PER_CONDITION);
  assert.equal(j.metrics.human_success, 0);
  assert.ok(j.metrics.human_alpha_violation! < 1, 'the flag is a disagreement');
  assert.equal(listRuns({ root: fx.home }).runs.length, before);
});

test('a malformed score file: exit 2 and one line naming file:line, field, expected and found', () => {
  const [good] = fill();
  const rows = csvRows(good!);
  const h = rows.findIndex((x) => x[0] === 'item');
  rows[h + 2]![5] = 'good';
  const bad = join(tmp, 'bad.csv');
  writeFileSync(bad, Papa.unparse(rows, { newline: '\r\n' }));
  const text = readFileSync(bad, 'utf8');
  const line = text.slice(0, text.indexOf(`\n${rows[h + 2]![0]},`) + 1).split('\n').length;
  const r = cli(['review', 'import', bad]);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n')[0], `clinilora: ${bad}:${line} 'clarity': invalid score (expected a score 1, 2, 3, 4 or 5, found "good")`);
  const wrongRun = cli(['review', 'import', good!, '--run', fx.run.id.replace(/.$/, (c) => (c === '0' ? '1' : '0'))]);
  assert.equal(wrongRun.status, 2);
});
