/**
 * The HTML review form writes the same CSV as the exporter: its script under node:vm (always), and
 * the real page clicked through in headless Chromium (when Debian's chromium is installed), its CSV
 * then imported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { findChromium, withChromium } from '../src/report/png.ts';
import { toCsv } from '../src/review/csv.ts';
import { exportReview } from '../src/review/export.ts';
import { readReviewKey } from '../src/review/import.ts';
import { blankAnswers, packetRows, type PacketAnswers, type PacketData } from '../src/review/protocol.ts';
import { readFilledPacket } from '../src/review/scores.ts';
import { makeReviewRun } from './review-fixtures.ts';

process.env.NODE_ENV = 'test';
const fx = await makeReviewRun();
const tmp = mkdtempSync(join(tmpdir(), 'clinilora-review-form-'));
const exported = exportReview(fx.run.id, { reviewers: 3, perReviewer: 8, root: fx.home, out: join(tmp, 'packets') });
const key = readReviewKey(exported.keyFile);
const packet = exported.files[0]!;
const html = readFileSync(packet.html, 'utf8');
const data = JSON.parse(/<script type="application\/json" id="review-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as PacketData;

type BuildCsv = (d: PacketData, a: PacketAnswers) => string;

/** The page's script, run with no DOM: only its pure CSV builder is defined. */
function formBuilder(): BuildCsv {
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  assert.equal(scripts.length, 1, 'one inline script, no external ones');
  assert.doesNotMatch(html, /<script[^>]*\ssrc=|<link[^>]*href=|https?:\/\//i, 'self-contained: nothing fetched');
  const ctx = vm.createContext({});
  vm.runInContext(scripts[0]!, ctx);
  return (ctx as { cliniloraReview: { buildCsv: BuildCsv } }).cliniloraReview.buildCsv;
}

test('the form script writes byte for byte the exported CSV, blank and filled', () => {
  const build = formBuilder();
  assert.equal(build(data, blankAnswers()), readFileSync(packet.csv, 'utf8'), 'blank form = the packet file');
  const a: PacketAnswers = { reviewer_name: 'Dr "Q" Test', reviewer_role: 'nurse', reviewer_credential: '=RN', items: {} };
  data.items.forEach((it, i) => {
    a.items[it.item] = { safety: String(1 + (i % 5)), helpfulness: '4', clarity: '3', factuality: '5', disclaimer: i % 2 ? 'yes' : 'no', violation: i === 0 ? 'yes' : '', comment: i === 1 ? '+1, "good"\nsecond line' : '' };
  });
  assert.equal(build(data, a), toCsv(packetRows(data, a)));
});

test('the page in headless Chromium: click scores, save, import', { skip: findChromium().path === null ? 'Debian chromium is not installed' : false }, async () => {
  const csv = await withChromium(async (page) => {
    await page.goto(pathToFileURL(packet.html).href);
    // Reviewer types and clicks: item i gets safety 1 + i % 5, helpfulness 4, clarity 3, factuality 5,
    // disclaimer yes on odd items, violation yes on the first; the last item is left untouched.
    await page.evaluate(`(() => {
      const set = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('change', { bubbles: true })); };
      set('reviewer_name', 'Dr Page'); set('reviewer_role', 'physician'); set('reviewer_credential', 'MD');
      const items = [...document.querySelectorAll('section.item')].map((s) => s.id);
      const click = (name, v) => document.querySelector('input[name="' + name + '"][value="' + v + '"]').click();
      items.slice(0, -1).forEach((id, i) => {
        click(id + '.safety', String(1 + (i % 5))); click(id + '.helpfulness', '4'); click(id + '.clarity', '3'); click(id + '.factuality', '5');
        click(id + '.disclaimer', i % 2 ? 'yes' : 'no');
        if (i === 0) click(id + '.violation', 'yes');
      });
      set(items[1] + '.comment', 'vague, "hedges"');
      return true;
    })()`);
    assert.equal(await page.evaluate<string>(`document.getElementById('progress').textContent`), `${data.items.length - 1} of ${data.items.length} items scored`);
    return page.evaluate<string>('cliniloraReview.csv()');
  });
  const file = join(tmp, 'from-browser.csv');
  writeFileSync(file, csv);
  const p = readFilledPacket(file, key);
  assert.deepEqual(p.reviewer, { name: 'Dr Page', role: 'physician', credential: 'MD' });
  assert.deepEqual(p.unrated, [data.items[data.items.length - 1]!.item]);
  assert.deepEqual(
    p.ratings.map((r) => [r.item, r.scores.safety, r.scores.helpfulness, r.scores.clarity, r.scores.factuality, r.disclaimer, r.violation]),
    data.items.slice(0, -1).map((it, i) => [it.item, 1 + (i % 5), 4, 3, 5, i % 2 === 1, i === 0]),
  );
  assert.equal(p.ratings[1]!.comment, 'vague, "hedges"');
});
