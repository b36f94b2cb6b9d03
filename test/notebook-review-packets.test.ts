/**
 * readPacket / fillPacket (src/notebook/review-packets.ts): an exported packet read back as the
 * reviewer sees it, and a programmatically filled copy that the real importer accepts with exactly
 * the ratings given (answers with commas, quotes, newlines and a leading '=' survive the round trip).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CliniloraError } from '../src/errors.ts';
import { fillPacket, readPacket, type PacketRating } from '../src/notebook/review-packets.ts';
import { exportReview } from '../src/review/export.ts';
import { importReview, readReviewKey } from '../src/review/import.ts';
import { makeReviewRun, Papa } from './review-fixtures.ts';

const fx = await makeReviewRun();
const tmp = mkdtempSync(join(tmpdir(), 'clinilora-nb-packets-'));
const exported = exportReview(fx.run.id, { reviewers: 2, perReviewer: 24, root: fx.home, out: join(tmp, 'packets'), key: join(tmp, 'key.json') });
const key = readReviewKey(exported.keyFile);
after(() => {
  for (const d of [tmp, fx.home, fx.gitDir]) rmSync(d, { recursive: true, force: true });
});

test('readPacket: the items of a packet in the order the reviewer sees them, text as shown', () => {
  const f = exported.files[0]!;
  const p = readPacket(f.csv);
  assert.equal(p.review, exported.review);
  assert.equal(p.packet, f.packet);
  assert.match(p.instructions, /reviewer_name/);
  const planned = key.packets.find((x) => x.packet === f.packet)!;
  assert.deepEqual(p.items.map((i) => i.item), planned.items, 'the packet order');
  const byItem = new Map(key.items.map((i) => [i.item, i]));
  for (const it of p.items) {
    assert.equal(it.question, byItem.get(it.item)!.question);
    assert.equal(it.answer, byItem.get(it.item)!.answer, 'the answer as exported (formula guard removed)');
  }
  assert.ok(p.items.some((it) => it.answer.startsWith('=')), 'the fixture has an answer starting with "=" (guarded in the CSV)');
});

test('fillPacket: the importer reads back exactly the ratings given; a blank row stays unreviewed', async () => {
  const given = new Map<string, PacketRating>();
  const filled = exported.files.map((f, j) =>
    fillPacket(f.csv, {
      out: join(tmp, 'filled', `${f.packet}.csv`),
      reviewer: { name: `Synthetic ${j}`, role: 'synthetic', credential: j === 0 ? 'none' : '' },
      rate: (it, i) => {
        if (j === 1 && i === 0) return null; // left blank
        const r: PacketRating = { safety: 1 + ((i + j) % 5), helpfulness: 1 + (i % 5), clarity: 5 - (i % 5), factuality: 3, disclaimer: i % 2 === 0, violation: i % 3 === 0, comment: `c${i}, "quoted"` };
        given.set(`${f.packet}:${it.item}`, r);
        return r;
      },
    }),
  );
  assert.deepEqual(filled.map((f) => f.rated), [24, 23]);
  // The exported packet stays blank.
  const blank = Papa.parse(readFileSync(exported.files[0]!.csv, 'utf8')).data;
  assert.equal(blank.find((r) => r[0] === 'reviewer_name')?.[1], '');
  const imported = await importReview(filled.map((f) => f.file), { key: exported.keyFile, root: fx.home, dryRun: true, gitDir: fx.gitDir });
  const reviewers = imported.aggregate.reviewers;
  assert.deepEqual(reviewers.map((r) => [r.reviewer.name, r.reviewer.role, r.ratings, r.unrated]), [['Synthetic 0', 'synthetic', 24, 0], ['Synthetic 1', 'synthetic', 23, 1]]);
  assert.equal(reviewers[0]!.reviewer.credential, 'none');
  assert.equal(imported.aggregate.conditions.reduce((a, c) => a + c.ratings, 0), given.size);
  // Each condition's mean safety equals the mean of the safety scores given to its items.
  const cond = new Map(key.items.map((i) => [i.item, i.condition]));
  for (const c of imported.aggregate.conditions) {
    const mine = [...given].filter(([k]) => cond.get(k.split(':')[1]!) === c.condition).map(([, r]) => r.safety);
    assert.ok(Math.abs(c.mean.safety - mine.reduce((a, b) => a + b, 0) / mine.length) < 1e-12, c.condition);
  }
});

test('fillPacket refuses a score outside 1–5 and a file that is not a packet', () => {
  const f = exported.files[0]!;
  const bad = (): PacketRating => ({ safety: 6, helpfulness: 3, clarity: 3, factuality: 3, disclaimer: true, violation: false });
  assert.throws(() => fillPacket(f.csv, { out: join(tmp, 'bad.csv'), reviewer: { name: 'x', role: 'y' }, rate: bad }), (e: unknown) => e instanceof CliniloraError && e.details.field === 'safety');
  assert.throws(() => readPacket(exported.keyFile), (e: unknown) => e instanceof CliniloraError);
});
