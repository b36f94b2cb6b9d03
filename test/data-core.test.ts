import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { Rng } from '../src/util/random.ts';
import { makeSample, sampleId, SPLIT_NAMES, type Sample } from '../src/data/sample.ts';
import { splitSamples, findLeakage, assertNoLeakage, type Splits, type SplitRatios } from '../src/data/split.ts';
import { buildManifest, verifyManifest, writeDataset, loadDataset, type SplitManifest } from '../src/data/manifest.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-data-core-'));

/** `groups` source records with `perGroup` samples each; labels a/b/c in proportions 5:3:2. */
function fixture(groups: number, perGroup = 1, seed = 1): Sample[] {
  const rng = new Rng(seed);
  const out: Sample[] = [];
  for (let g = 0; g < groups; g++) {
    const label = g % 10 < 5 ? 'a' : g % 10 < 8 ? 'b' : 'c';
    for (let k = 0; k < perGroup; k++) {
      const x = rng.int(1_000_000);
      out.push(
        makeSample('instruct', {
          system: 'sys',
          user: `question ${g}.${k} about ${x}`,
          answer: `answer ${label} ${x}`,
          source: `src-${String(g).padStart(4, '0')}`,
          meta: { label },
        }),
      );
    }
  }
  return out;
}

function manifestFor(splits: Splits, seed: number, ratios: SplitRatios): SplitManifest {
  return buildManifest({ task: 'instruct', seed, ratios, generator: { name: 'test', version: '0' }, options: {}, sources: [], dropped: {} }, splits);
}

const ids = (ss: Sample[]): string[] => ss.map((s) => s.id);
const RATIOS: SplitRatios = { train: 0.8, validation: 0.1, test: 0.1 };

test('sample IDs hash the content only', () => {
  const a = makeSample('instruct', { system: 's', user: 'u', answer: 'a', source: 'x', meta: { k: 1 } });
  const b = makeSample('instruct', { system: 's', user: 'u', answer: 'a', source: 'y' });
  const c = makeSample('instruct', { system: 's', user: 'u', answer: 'a!', source: 'x' });
  assert.equal(a.id, b.id);
  assert.notEqual(a.id, c.id);
  assert.match(a.id, /^[0-9a-f]{16}$/);
  assert.equal(a.id, sampleId('s', 'u', 'a'));
});

test('same seed gives identical IDs and identical bytes on disk; another seed another split', () => {
  const samples = fixture(60, 2);
  const s1 = splitSamples(samples, { seed: 42, ratios: RATIOS });
  const s2 = splitSamples([...samples].reverse(), { seed: 42, ratios: RATIOS });
  for (const n of SPLIT_NAMES) assert.deepEqual(ids(s1[n]), ids(s2[n]));
  const d1 = join(tmp(), 'ds');
  const d2 = join(tmp(), 'ds');
  writeDataset(d1, s1, manifestFor(s1, 42, RATIOS));
  writeDataset(d2, s2, manifestFor(s2, 42, RATIOS));
  for (const f of ['train.jsonl', 'validation.jsonl', 'test.jsonl', 'manifest.json']) {
    assert.ok(readFileSync(join(d1, f)).equals(readFileSync(join(d2, f))), `${f} differs between two builds with the same seed`);
  }
  const s3 = splitSamples(samples, { seed: 43, ratios: RATIOS });
  assert.notDeepEqual(ids(s3.test), ids(s1.test));
  assert.notEqual(manifestFor(s3, 43, RATIOS).sha256, manifestFor(s1, 42, RATIOS).sha256);
});

test('a source record never spans two splits', () => {
  const samples = fixture(40, 3);
  const s = splitSamples(samples, { seed: 7, ratios: { train: 0.5, validation: 0.25, test: 0.25 } });
  const where = new Map<string, Set<string>>();
  for (const n of SPLIT_NAMES) for (const x of s[n]) (where.get(x.source) ?? where.set(x.source, new Set()).get(x.source)!).add(n);
  assert.equal(where.size, 40);
  for (const [src, splits] of where) assert.equal(splits.size, 1, `${src} in ${[...splits].join('+')}`);
  assert.equal(s.train.length + s.validation.length + s.test.length, 120);
  assert.deepEqual(findLeakage(s), { contentLeaks: [], sourceLeaks: [] });
});

test('stratification keeps each class within ±1 of its share in every split', () => {
  const samples = fixture(200); // a: 100, b: 60, c: 40
  const s = splitSamples(samples, { seed: 3, ratios: RATIOS, stratify: (x) => String(x.meta.label) });
  const total = { a: 100, b: 60, c: 40 } as const;
  for (const n of SPLIT_NAMES) {
    for (const label of ['a', 'b', 'c'] as const) {
      const got = s[n].filter((x) => x.meta.label === label).length;
      const want = total[label] * RATIOS[n];
      assert.ok(Math.abs(got - want) <= 1, `${n}/${label}: ${got} vs ${want}`);
    }
  }
  // The split files are not sorted by class: the first tenth of train has more than one class.
  assert.ok(new Set(s.train.slice(0, 16).map((x) => x.meta.label)).size > 1);
});

test('ratios as fractions and as absolute counts', () => {
  const samples = fixture(100);
  const f = splitSamples(samples, { seed: 1, ratios: { train: 0.7, validation: 0.2, test: 0.1 } });
  assert.deepEqual([f.train.length, f.validation.length, f.test.length], [70, 20, 10]);
  const c = splitSamples(samples, { seed: 1, ratios: { train: 20, validation: 5, test: 5 } });
  assert.deepEqual([c.train.length, c.validation.length, c.test.length], [20, 5, 5]);
  // More asked for than exists: scaled down in proportion.
  const big = splitSamples(samples, { seed: 1, ratios: { train: 160, validation: 20, test: 20 } });
  assert.deepEqual([big.train.length, big.validation.length, big.test.length], [80, 10, 10]);
  const ones = splitSamples(samples, { seed: 1, ratios: { train: 1, validation: 1, test: 1 } });
  assert.deepEqual([ones.train.length, ones.validation.length, ones.test.length], [1, 1, 1]);
  assert.throws(() => splitSamples(samples, { seed: 1, ratios: { train: 0.5, validation: 0.3, test: 0.3 } }), (e: unknown) => e instanceof CliniloraError && /sum to 1/.test(e.message));
  assert.throws(() => splitSamples(samples, { seed: 1, ratios: { train: -0.1, validation: 0.6, test: 0.5 } }), CliniloraError);
});

test('planted leaks are caught and named: same content, and same source, in two splits', () => {
  const s = splitSamples(fixture(30), { seed: 5, ratios: RATIOS });
  assert.doesNotThrow(() => assertNoLeakage(s, 'clean'));

  const victim = s.train[0]!;
  // Same content (differing only in spacing and case) under another source, in test.
  const copy = makeSample('instruct', { system: 'sys', user: `  ${victim.user.toUpperCase()} `, answer: victim.answer, source: 'elsewhere' });
  const leaky: Splits = { ...s, test: [...s.test, copy] };
  assert.equal(findLeakage(leaky).contentLeaks.length, 1);
  assert.throws(
    () => assertNoLeakage(leaky, 'planted'),
    (e: unknown) => e instanceof CliniloraError && e.message.includes(victim.id) && e.message.includes(copy.id) && e.message.includes('train+test') && e.message.includes('planted'),
  );

  // Different content, same source, in validation.
  const sibling = makeSample('instruct', { system: 'sys', user: 'something new', answer: 'new', source: victim.source });
  const leaky2: Splits = { ...s, validation: [...s.validation, sibling] };
  assert.deepEqual(findLeakage(leaky2).sourceLeaks, [{ source: victim.source, splits: ['train', 'validation'] }]);
  assert.throws(() => assertNoLeakage(leaky2, 'planted'), (e: unknown) => e instanceof CliniloraError && e.message.includes(`${victim.source} in train+validation`));

  // writeDataset refuses a leaky dataset and leaves nothing behind.
  const dir = join(tmp(), 'leaky');
  assert.throws(() => writeDataset(dir, leaky, manifestFor(leaky, 5, RATIOS)), CliniloraError);
  assert.equal(existsSync(dir), false);
});

test('a manifest verifies its own sha256; an edited ID fails', () => {
  const s = splitSamples(fixture(20), { seed: 9, ratios: RATIOS });
  const m = manifestFor(s, 9, RATIOS);
  assert.match(m.sha256, /^[0-9a-f]{64}$/);
  assert.doesNotThrow(() => verifyManifest(m));
  // Key order does not matter to the hash.
  const reordered = Object.fromEntries(Object.entries(m).reverse()) as unknown as SplitManifest;
  assert.doesNotThrow(() => verifyManifest(reordered));

  const tampered: SplitManifest = { ...m, splits: { ...m.splits, test: [...m.splits.test] } };
  tampered.splits.test[0] = '0000000000000000';
  assert.throws(() => verifyManifest(tampered, 'x/manifest.json'), (e: unknown) => e instanceof CliniloraError && e.details.field === 'sha256' && e.message.includes('x/manifest.json'));

  // On disk: an edited manifest.json is refused by loadDataset.
  const dir = join(tmp(), 'ds');
  writeDataset(dir, s, m);
  const mfile = join(dir, 'manifest.json');
  const text = readFileSync(mfile, 'utf8');
  writeFileSync(mfile, text.replace(m.splits.train[0]!, 'ffffffffffffffff'));
  assert.throws(() => loadDataset(dir), (e: unknown) => e instanceof CliniloraError && e.details.file === mfile && /sha256/.test(e.message));
});

test('loadDataset round-trips and detects an edited sample by file and line', () => {
  const s = splitSamples(fixture(30), { seed: 11, ratios: RATIOS });
  const m = manifestFor(s, 11, RATIOS);
  const dir = join(tmp(), 'ds');
  writeDataset(dir, s, m);
  assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'test.jsonl', 'train.jsonl', 'validation.jsonl']);
  const back = loadDataset(dir);
  assert.deepEqual(back.splits, s);
  assert.equal(back.manifest.sha256, m.sha256);

  const file = join(dir, 'train.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n');
  const edited = JSON.parse(lines[2]!) as Sample;
  edited.answer = `${edited.answer} (edited)`;
  lines[2] = JSON.stringify(edited);
  writeFileSync(file, lines.join('\n'));
  assert.throws(
    () => loadDataset(dir),
    (e: unknown) => e instanceof CliniloraError && e.details.file === file && e.details.line === 3 && e.details.found === edited.id && e.message.includes('train.jsonl:3'),
  );
});

test('loadDataset detects a sample dropped from a split file', () => {
  const s = splitSamples(fixture(30), { seed: 12, ratios: RATIOS });
  const dir = join(tmp(), 'ds');
  writeDataset(dir, s, manifestFor(s, 12, RATIOS));
  const file = join(dir, 'test.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n');
  writeFileSync(file, lines.slice(1).join('\n'));
  assert.throws(() => loadDataset(dir), (e: unknown) => e instanceof CliniloraError && e.details.file === file && /does not match the manifest/.test(e.message));
  assert.throws(() => loadDataset(join(tmp(), 'nothing')), (e: unknown) => e instanceof CliniloraError && e.code === 'E_MISSING');
});
