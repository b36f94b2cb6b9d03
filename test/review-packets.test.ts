/** Review packets as a library: who rates what, and every way a filled packet can be wrong. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliniloraError } from '../src/errors.ts';
import { assignItems } from '../src/review/assign.ts';
import { exportReview } from '../src/review/export.ts';
import { readReviewKey } from '../src/review/import.ts';
import { readFilledPacket } from '../src/review/scores.ts';
import { Rng } from '../src/util/random.ts';
import { makeReviewRun, Papa, PER_CONDITION } from './review-fixtures.ts';

process.env.NODE_ENV = 'test';
const fx = await makeReviewRun();
const tmp = mkdtempSync(join(tmpdir(), 'clinilora-review-packets-'));

/** How many packets hold each item. */
function coverage(packets: number[][]): Map<number, number> {
  const c = new Map<number, number>();
  for (const p of packets) for (const i of p) c.set(i, (c.get(i) ?? 0) + 1);
  return c;
}

test('assignment: N·K >= 2M covers every item 2+ times, no reviewer sees an item twice', () => {
  const groups = [Array.from({ length: 12 }, (_, i) => `a${i}`), Array.from({ length: 12 }, (_, i) => `b${i}`)];
  for (const [N, K] of [[3, 16], [4, 12], [5, 10], [2, 24]] as const) {
    const a = assignItems(groups, N, K, new Rng(1));
    assert.equal(a.chosen.length, 24, `${N}x${K}`);
    assert.deepEqual(new Set(a.chosen), new Set(groups.flat()));
    assert.equal(a.packets.length, N);
    for (const p of a.packets) {
      assert.equal(p.length, K);
      assert.equal(new Set(p).size, K, 'distinct items in a packet');
    }
    const c = [...coverage(a.packets).values()];
    assert.equal(c.length, 24);
    assert.ok(Math.min(...c) >= 2 && Math.max(...c) - Math.min(...c) <= 1, `${N}x${K}: even coverage ${c}`);
    assert.deepEqual(a.notes, []);
  }
});

test('assignment: too few slots draws ⌊N·K/2⌋ items balanced across conditions, each rated twice', () => {
  const groups = [Array.from({ length: 12 }, (_, i) => `a${i}`), Array.from({ length: 12 }, (_, i) => `b${i}`)];
  const a = assignItems(groups, 4, 5, new Rng(2));
  assert.equal(a.chosen.length, 10);
  assert.equal(a.chosen.filter((x) => x.startsWith('a')).length, 5, 'half from each condition');
  assert.deepEqual([...coverage(a.packets).values()], Array(10).fill(2));
  assert.match(a.notes[0]!, /cannot rate all 24 items twice: 10 items drawn/);
  const one = assignItems(groups, 1, 6, new Rng(2));
  assert.equal(one.chosen.length, 6);
  assert.match(one.notes[0]!, /agreement cannot be computed/);
  assert.throws(() => assignItems(groups, 2, 25, new Rng(2)), (e: unknown) => e instanceof CliniloraError && e.details.field === '--per-reviewer' && e.details.expected === '<= 24');
  assert.throws(() => assignItems(groups, 0, 5, new Rng(2)), (e: unknown) => e instanceof CliniloraError && e.details.field === '--reviewers');
  // Seeded: the same seed gives the same plan, another seed another one.
  assert.deepEqual(assignItems(groups, 3, 16, new Rng(9)), assignItems(groups, 3, 16, new Rng(9)));
  assert.notDeepEqual(assignItems(groups, 3, 16, new Rng(9)).packets, assignItems(groups, 3, 16, new Rng(10)).packets);
});

// --- a filled packet, and every way to break it -------------------------------------------------------

const exported = exportReview(fx.run.id, { reviewers: 2, perReviewer: 2 * PER_CONDITION, root: fx.home, out: join(tmp, 'packets') });
const key = readReviewKey(exported.keyFile);
const blank = readFileSync(exported.files[0]!.csv, 'utf8');
const blankRows = Papa.parse(blank.replace(/\r\n$/, '')).data;
const header = blankRows.findIndex((r) => r[0] === 'item');

/** The blank packet with `edit` applied to its rows (parsed and written with papaparse itself). */
function variant(name: string, edit: (rows: string[][]) => void): string {
  const rows = blankRows.map((r) => [...r]);
  rows[3]![1] = 'Dr Ada Test';
  rows[4]![1] = 'physician';
  rows[5]![1] = 'MD';
  for (const r of rows.slice(header + 1)) r.splice(3, 5, '4', '4', '5', '3', 'yes');
  edit(rows);
  const file = join(tmp, `${name}.csv`);
  writeFileSync(file, Papa.unparse(rows, { newline: '\r\n' }));
  return file;
}

/** The 1-based line where the row of `item` starts in `file`. */
function lineOf(file: string, item: string): number {
  const text = readFileSync(file, 'utf8');
  return text.slice(0, text.indexOf(`\n${item},`) + 1).split('\n').length;
}

function rejects(file: string, want: { line?: number; field: string; expected?: RegExp; found?: RegExp; code?: string }): void {
  assert.throws(
    () => readFilledPacket(file, key),
    (e: unknown) => {
      assert.ok(e instanceof CliniloraError, String(e));
      assert.equal(e.code, want.code ?? 'E_FORMAT');
      assert.equal(e.details.file, file);
      if (want.line !== undefined) assert.equal(e.details.line, want.line, e.message);
      assert.equal(e.details.field, want.field, e.message);
      if (want.expected) assert.match(e.details.expected ?? '', want.expected, e.message);
      if (want.found) assert.match(e.details.found ?? '', want.found, e.message);
      assert.ok(e.message.startsWith(want.line !== undefined ? `${file}:${want.line} '${want.field}'` : file), e.message);
      return true;
    },
  );
}

test('a well-filled packet reads back: reviewer from the header rows, one rating per item', () => {
  const file = variant('good', (rows) => {
    rows[header + 1]![8] = ''; // violation blank = no
    rows[header + 2]![8] = 'YES';
    rows[header + 3]!.splice(3, 6, '', '', '', '', '', ''); // not reviewed
  });
  const p = readFilledPacket(file, key);
  assert.deepEqual(p.reviewer, { name: 'Dr Ada Test', role: 'physician', credential: 'MD' });
  assert.equal(p.packet, 'R01');
  assert.equal(p.ratings.length, 2 * PER_CONDITION - 1);
  assert.deepEqual(p.unrated, [blankRows[header + 3]![0]]);
  const first = p.ratings[0]!;
  assert.deepEqual(first.scores, { safety: 4, helpfulness: 4, clarity: 5, factuality: 3 });
  assert.equal(first.disclaimer, true);
  assert.equal(first.violation, false);
  assert.equal(p.ratings[1]!.violation, true);
  assert.equal(first.line, lineOf(file, first.item));
});

test('malformed packets: each error names the file, line, field, expected and found', () => {
  const item = (k: number): string => blankRows[header + 1 + k]![0]!;
  const bad = variant('score6', (rows) => void (rows[header + 3]![3] = '6'));
  rejects(bad, { line: lineOf(bad, item(2)), field: 'safety', expected: /1, 2, 3, 4 or 5/, found: /"6"/ });
  const half = variant('score-half', (rows) => void (rows[header + 2]![6] = '4.5'));
  rejects(half, { line: lineOf(half, item(1)), field: 'factuality', found: /"4.5"/ });
  const partial = variant('partial', (rows) => void (rows[header + 5]![4] = ''));
  rejects(partial, { line: lineOf(partial, item(4)), field: 'helpfulness', found: /nothing/ });
  const disc = variant('disclaimer', (rows) => void (rows[header + 1]![7] = 'maybe'));
  rejects(disc, { line: lineOf(disc, item(0)), field: 'disclaimer', expected: /yes or no/, found: /maybe/ });
  rejects(variant('no-name', (rows) => void (rows[3]![1] = '  ')), { line: 4, field: 'reviewer_name', found: /nothing/ });
  rejects(variant('no-role', (rows) => void rows.splice(4, 1)), { line: 1, field: 'reviewer_role', found: /no such row/ });
  rejects(variant('typo-key', (rows) => void (rows[5]![0] = 'reviewer_credentials')), { line: 6, field: 'reviewer_credentials' });
  const unknown = variant('unknown-item', (rows) => void (rows[header + 4]![0] = 'QZZZZZ'));
  rejects(unknown, { line: lineOf(unknown, 'QZZZZZ'), field: 'item', found: /QZZZZZ/ });
  const dup = variant('duplicate', (rows) => void (rows[header + 6]![0] = rows[header + 2]![0]!));
  rejects(dup, { field: 'item', found: /again \(first on line \d+\)/ });
  rejects(variant('no-column', (rows) => void rows.forEach((r, i) => i >= header && r.splice(6, 1))), { line: header + 1, field: 'factuality' });
  rejects(variant('other-review', (rows) => void (rows[1]![1] = 'rv-0000000000')), { line: 2, field: 'review', expected: new RegExp(key.review) });
  rejects(variant('no-packet', (rows) => void (rows[2]![1] = 'R99')), { line: 3, field: 'packet', found: /R99/ });
  rejects(variant('version2', (rows) => void (rows[0]![1] = '2')), { line: 1, field: 'version', code: 'E_UNSUPPORTED' });
  const blankFile = join(tmp, 'blank.csv');
  writeFileSync(blankFile, blank.replace('"reviewer_name",""', '"reviewer_name","X"').replace('"reviewer_role",""', '"reviewer_role","nurse"'));
  rejects(blankFile, { field: 'safety', found: /no scores/ });

  const notPacket = join(tmp, 'other.csv');
  writeFileSync(notPacket, 'a,b,c\n1,2,3\n');
  rejects(notPacket, { line: 1, field: 'clinilora-review', found: /a,b,c/ });
  // A quote left open in a comment: the CSV itself is broken, named at the line where it starts.
  const open = variant('open-quote', () => {});
  const text = readFileSync(open, 'utf8');
  const at = text.indexOf(`\n${item(3)},`) + 1;
  const lineEnd = text.indexOf('\r\n', at);
  writeFileSync(open, `${text.slice(0, lineEnd)}"oops${text.slice(lineEnd)}`);
  assert.throws(() => readFilledPacket(open, key), (e: unknown) => e instanceof CliniloraError && e.details.file === open && /malformed CSV/.test(e.message) && typeof e.details.line === 'number');
});

test('export refuses a key inside the packets folder and bad sizes, writing nothing', () => {
  const dir = join(tmp, 'refused');
  assert.throws(() => exportReview(fx.run.id, { reviewers: 2, perReviewer: 4, root: fx.home, out: dir, key: join(dir, 'key.json') }), /must not be written into the packets folder/);
  assert.throws(() => exportReview(fx.run.id, { reviewers: 2, perReviewer: 99, root: fx.home, out: dir }), (e: unknown) => e instanceof CliniloraError && e.details.field === '--per-reviewer');
  assert.throws(() => readFileSync(join(dir, 'key.json')), /ENOENT/);
});
