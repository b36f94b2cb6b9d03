import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findViolations } from '../src/safety/filter.ts';
import {
  ADVERSARIAL_CATEGORIES,
  ADVERSARIAL_TACTICS,
  adversarialSlice,
  ALPACARE_DEMO_COUNTS,
  buildAlpacareDataset,
  countDisclaimers,
  DISCLAIMER,
  endsWithDisclaimer,
  estimateTokensByChars,
  loadAdversarialSet,
  loadMedInstruct,
  SAFETY_SYSTEM_PREFIX,
  trimToLastSentence,
  withDisclaimer,
} from '../src/data/alpacare/index.ts';
import { findLeakage } from '../src/data/split.ts';
import { SPLIT_NAMES, type Sample } from '../src/data/sample.ts';
import { CliniloraError } from '../src/errors.ts';

const FIXTURE = new URL('./fixtures/data/medinstruct-small.jsonl', import.meta.url).pathname;
const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-alpacare-'));
const all = (s: Record<string, Sample[]>): Sample[] => SPLIT_NAMES.flatMap((n) => s[n]!);
const words = (t: string): number => t.split(/\s+/).filter(Boolean).length;

const builtin = buildAlpacareDataset();

test('cleaning counts on the fixture: empty, too long, duplicate, control characters, whitespace', () => {
  const { records, stats } = loadMedInstruct(FIXTURE, { countTokens: words, maxTokens: 100 });
  assert.equal(stats.read, 10);
  assert.equal(stats.kept, 6);
  assert.deepEqual(stats.dropped, { empty_instruction: 1, empty_output: 1, truncated: 0, too_long: 1, duplicate: 1 });
  assert.equal(stats.controlCharRecords, 1);
  assert.equal(stats.controlChars, 3);
  // lines 2, 3, 6 and 7 have stray spaces, tabs, CRLF or blank-line runs
  assert.equal(stats.whitespaceRecords, 4);
  const byLine = new Map(records.map((r) => [r.line, r]));
  assert.equal(byLine.get(5)!.instruction, 'What is asthma?');
  assert.equal(byLine.get(5)!.output, 'Asthma is a chronic airway disease.');
  assert.equal(byLine.get(6)!.instruction, 'List signs of stroke.');
  assert.equal(byLine.get(6)!.output, 'Face drooping.\nArm weakness.\n\nSpeech difficulty.');
  assert.equal(byLine.get(8)!.input, 'Patient reports cough for 3 days.');
  assert.equal(byLine.get(9)!.input, '');
  assert.equal(byLine.get(10)!.output, 'A chronic lung disease.'); // the {instruction, response} form
  assert.ok(!byLine.has(7), 'the duplicate of line 1 (after normalisation) is dropped');
  // the default estimate is characters / 3.5 and drops the 2,300-character record too
  assert.equal(estimateTokensByChars('x'.repeat(35)), 10);
  assert.equal(loadMedInstruct(FIXTURE).stats.dropped.too_long, 1);
  // every record that reaches the length check (8: the duplicate too, it is checked before) has > 5 words
  assert.equal(loadMedInstruct(FIXTURE, { countTokens: words, maxTokens: 5 }).stats.dropped.too_long, 8);
});

test('JSON array files load like JSONL; bad JSON names the file and line', () => {
  const dir = tmp();
  const lines = readFileSync(FIXTURE, 'utf8').trim().split('\n');
  const arr = join(dir, 'set.json');
  writeFileSync(arr, `[\n${lines.join(',\n')}\n]\n`);
  const a = loadMedInstruct(arr, { countTokens: words, maxTokens: 100 });
  const b = loadMedInstruct(FIXTURE, { countTokens: words, maxTokens: 100 });
  assert.deepEqual(a.records, b.records.map((r) => ({ ...r, line: r.line + 1 })));

  const badl = join(dir, 'bad.jsonl');
  writeFileSync(badl, `${lines[0]}\n${lines[1]}\n{"instruction": "x", "output": \n`);
  assert.throws(() => loadMedInstruct(badl), (e: unknown) => e instanceof CliniloraError && e.details.line === 3 && e.message.includes(`${badl}:3`));
  const bada = join(dir, 'bad.json');
  writeFileSync(bada, '[\n{"instruction": "a", "output": "b"},\n{"instruction": "c" "output": "d"}\n]');
  assert.throws(() => loadMedInstruct(bada), (e: unknown) => e instanceof CliniloraError && e.details.line === 3 && e.details.file === bada);
});

test('truncated answers are cut back to their last complete sentence', () => {
  assert.equal(trimToLastSentence('One. Two is fine.\n\n3. Three stops mid'), 'One. Two is fine.');
  assert.equal(trimToLastSentence('Intro text here.\n7. Cardiac CT: Provide images of'), 'Intro text here.');
  const dir = tmp();
  const f = join(dir, 't.jsonl');
  writeFileSync(
    f,
    [
      { instruction: 'a', input: '', output: 'A complete first sentence here. And a second one that stops' },
      { instruction: 'b', input: '', output: 'Short. This long second part goes on and on and never ends with a stop' },
      { instruction: 'c', input: '', output: 'Ends well.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const r = loadMedInstruct(f, { repairTruncated: true });
  assert.deepEqual(r.records.map((x) => x.output), ['A complete first sentence here.', 'Ends well.']);
  assert.equal(r.stats.truncatedTrimmed, 1);
  assert.equal(r.stats.dropped.truncated, 1);
  assert.equal(loadMedInstruct(f).records.length, 3); // off by default
});

test('built-in corpus: every prompt has the safety prefix, every target ends with the disclaimer exactly once', () => {
  const samples = all(builtin.splits);
  assert.ok(samples.length > 200, `${samples.length} samples`);
  for (const s of samples) {
    assert.equal(s.system, SAFETY_SYSTEM_PREFIX);
    assert.ok(endsWithDisclaimer(s.answer), s.answer.slice(-200));
    assert.equal(countDisclaimers(s.answer), 1);
    assert.equal(s.task, 'alpacare');
  }
  assert.match(SAFETY_SYSTEM_PREFIX, /do not diagnose/i);
  assert.match(SAFETY_SYSTEM_PREFIX, /do not prescribe/i);
  assert.match(SAFETY_SYSTEM_PREFIX, /doses/);
  assert.ok(SAFETY_SYSTEM_PREFIX.includes(DISCLAIMER));
  // not doubled when the source already has it, wherever it was
  const once = withDisclaimer(`Drink water.\n\n${DISCLAIMER}`);
  assert.equal(countDisclaimers(withDisclaimer(once)), 1);
  assert.equal(countDisclaimers(withDisclaimer(`${DISCLAIMER} Then more text.`)), 1);
  assert.ok(endsWithDisclaimer(withDisclaimer(`${DISCLAIMER} Then more text.`)));
  // both origins, each in every split; non-commercial licence recorded per sample
  for (const name of SPLIT_NAMES) {
    assert.deepEqual([...new Set(builtin.splits[name].map((s) => s.meta.origin))].sort(), ['alpacare-medinstruct-test', 'medical-llm-pipeline']);
  }
  assert.ok(samples.filter((s) => s.meta.origin === 'alpacare-medinstruct-test').every((s) => /non-commercial/.test(String(s.meta.license))));
});

test('built-in cleaning counts and split sizes', () => {
  const [alpacare, pipeline] = builtin.cleaning;
  assert.equal(alpacare!.read, 216);
  assert.equal(pipeline!.read, 112);
  // kept by cleaning, minus the answers that themselves give a dose, a prescription or a diagnosis
  const unsafe = builtin.manifest.dropped.unsafe_answer!;
  assert.ok(unsafe > 0, 'some clinician-facing AlpaCare answers give doses');
  const kept = alpacare!.kept + pipeline!.kept - unsafe;
  assert.equal(all(builtin.splits).length, kept);
  for (const s of all(builtin.splits)) assert.deepEqual(findViolations(s.answer), [], s.answer.slice(0, 200));
  const withUnsafe = buildAlpacareDataset({ dropUnsafeAnswers: false });
  assert.equal(all(withUnsafe.splits).length, kept + unsafe);
  assert.equal(withUnsafe.manifest.dropped.unsafe_answer, 0);
  assert.equal(builtin.manifest.dropped.too_long, alpacare!.dropped.too_long + pipeline!.dropped.too_long);
  // no AlpaCare answer stops mid-sentence after repair
  for (const s of all(builtin.splits)) {
    const body = s.answer.slice(0, -DISCLAIMER.length).trim();
    if (s.meta.origin === 'alpacare-medinstruct-test') assert.match(body, /[.!?]["'”’)\]*]*$/, body.slice(-80));
  }
  const n = (k: 'train' | 'validation' | 'test'): number => builtin.manifest.counts[k];
  assert.ok(Math.abs(n('train') / kept - 0.9) < 0.02 && n('test') >= 10 && n('validation') >= 10);
  assert.deepEqual(builtin.manifest.sources.map((s) => s.sha256), [
    '4965bb3235b4914b6a3e4d3925a102849fe3af27f813a466c6b60e8cf54187e6',
    'e06aa4be322673bd2f0bf19862d4dd59c0c14314e77964b2db6d98097985146e',
  ]);
  // AlpaCare-style absolute counts: scaled down to the corpus, in the 5000:250:250 proportion
  const demo = buildAlpacareDataset({ ratios: ALPACARE_DEMO_COUNTS });
  assert.equal(demo.manifest.counts.train + demo.manifest.counts.validation + demo.manifest.counts.test, kept);
  assert.ok(Math.abs(demo.manifest.counts.test - (kept * 250) / 5500) <= 2);
  // a token counter that makes everything too long leaves nothing
  assert.equal(all(buildAlpacareDataset({ countTokens: () => 10_000 }).splits).length, 0);
});

test('determinism and no leakage: same seed same IDs and manifest; other seed other splits', () => {
  const again = buildAlpacareDataset();
  assert.deepEqual(all(again.splits).map((s) => s.id), all(builtin.splits).map((s) => s.id));
  assert.equal(again.manifest.sha256, builtin.manifest.sha256);
  const other = buildAlpacareDataset({ seed: 43 });
  assert.notDeepEqual(other.splits.test.map((s) => s.id).sort(), builtin.splits.test.map((s) => s.id).sort());
  const leaks = findLeakage(builtin.splits);
  assert.equal(leaks.contentLeaks.length + leaks.sourceLeaks.length, 0);
});

test('adversarial set: at least 60 prompts, every category and tactic, refuse and refer, never in any split', () => {
  const adv = loadAdversarialSet();
  assert.ok(adv.length >= 60, String(adv.length));
  assert.deepEqual([...new Set(adv.map((a) => a.category))].sort(), [...ADVERSARIAL_CATEGORIES].sort());
  assert.deepEqual([...new Set(adv.map((a) => a.tactic))].sort(), [...ADVERSARIAL_TACTICS].sort());
  for (const a of ADVERSARIAL_CATEGORIES) assert.ok(adv.filter((x) => x.category === a).length >= 8, a);
  assert.ok(adv.every((a) => a.expected_behaviour === 'refuse and refer'));
  assert.equal(new Set(adv.map((a) => a.prompt)).size, adv.length);
  assert.ok(adv.some((a) => /my doctor said it's fine/i.test(a.prompt)));
  assert.ok(adv.some((a) => a.refer_to === 'emergency'));

  const norm = (t: string): string => t.replace(/\s+/g, ' ').toLowerCase();
  for (const s of all(builtin.splits)) for (const a of adv) assert.ok(!norm(s.user).includes(norm(a.prompt)), a.id);

  // planted: a MedInstruct file that contains an adversarial prompt is refused
  const dir = tmp();
  const f = join(dir, 'leaky.jsonl');
  writeFileSync(
    f,
    [
      { instruction: 'What is a normal resting heart rate?', input: '', output: 'Usually 60 to 100 beats a minute.' },
      { instruction: adv[3]!.prompt, input: '', output: 'Some answer.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  assert.throws(() => buildAlpacareDataset({ source: f, ratios: { train: 0.5, validation: 0, test: 0.5 } }), /adversarial evaluation prompt adv-/);
});

test('adversarial loader validates fields with file and line', () => {
  const dir = tmp();
  const f = join(dir, 'adv.jsonl');
  writeFileSync(
    f,
    `${JSON.stringify({ id: 'a1', category: 'dosage', tactic: 'direct', prompt: 'How much?', expected_behaviour: 'refuse and refer', refer_to: 'clinician' })}\n` +
      `${JSON.stringify({ id: 'a2', category: 'astrology', tactic: 'direct', prompt: 'x', expected_behaviour: 'refuse and refer', refer_to: 'clinician' })}\n`,
  );
  assert.throws(() => loadAdversarialSet(f), (e: unknown) => e instanceof CliniloraError && e.details.line === 2 && e.details.field === 'category');
});

test('an adversarial slice smaller than the set covers every category in turn', () => {
  const set = loadAdversarialSet();
  const k = ADVERSARIAL_CATEGORIES.length;
  const slice = adversarialSlice(set, k * 2);
  assert.equal(slice.length, k * 2);
  for (const c of ADVERSARIAL_CATEGORIES) assert.equal(slice.filter((a) => a.category === c).length, 2, c);
  assert.equal(new Set(slice.map((a) => a.id)).size, slice.length, 'no prompt twice');
  assert.deepEqual(adversarialSlice(set, null), set);
  assert.deepEqual(adversarialSlice(set, set.length + 5), set);
});
