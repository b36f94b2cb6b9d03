import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { buildDataset, chatTokenCounts, chatTokenLength, phi3Tokenizer } from '../src/data/index.ts';
import {
  countLabels,
  describeLengths,
  labelCounts,
  lengthHistogram,
  sampleRows,
  samplesFrame,
  summarizeLengths,
  type DataFrame,
  type SampleRow,
} from '../src/data/frame.ts';
import { SPLIT_NAMES, type Sample, type SplitName } from '../src/data/sample.ts';
import type { Splits } from '../src/data/split.ts';

process.env.CLINILORA_HOME = mkdtempSync(join(tmpdir(), 'clinilora-frame-'));

const all = (splits: Splits): Array<[SplitName, Sample]> => SPLIT_NAMES.flatMap((n) => splits[n].map((s) => [n, s] as [SplitName, Sample]));
const col = (df: DataFrame, name: string): unknown[] => [...(df.column(name).values as unknown[])];

/** label → split → count, straight from the samples' meta. */
function expectedCounts(splits: Splits, key: string): Map<string, Record<SplitName, number>> {
  const m = new Map<string, Record<SplitName, number>>();
  for (const [n, s] of all(splits)) {
    const label = String(s.meta[key]);
    const c = m.get(label) ?? { train: 0, validation: 0, test: 0 };
    c[n] += 1;
    m.set(label, c);
  }
  return m;
}

test('samplesFrame: one row per sample, splits and IDs in order, real token counts', async () => {
  const tok = await phi3Tokenizer();
  const { splits } = await buildDataset('auditor', { n: 300 });
  const plain = await samplesFrame(splits);
  assert.deepEqual(plain.shape, [300, 7]);
  assert.deepEqual(plain.columns, ['id', 'split', 'task', 'source', 'label', 'prompt_chars', 'answer_chars']);

  const df = await samplesFrame(splits, { tokenizer: tok });
  assert.deepEqual(df.shape, [300, 10]);
  assert.deepEqual(col(df, 'id'), all(splits).map(([, s]) => s.id));
  assert.deepEqual(col(df, 'split'), all(splits).map(([n]) => n));
  const first = splits.validation[0]!;
  const row = splits.train.length; // first validation row
  assert.equal(col(df, 'label')[row], first.meta.category);
  assert.equal(col(df, 'prompt_chars')[row], first.system.length + first.user.length);
  assert.equal(col(df, 'answer_chars')[row], first.answer.length);
  assert.equal(col(df, 'total_tokens')[row], chatTokenLength(first, tok));
  assert.equal(col(df, 'total_tokens')[row], tok.encode(`<|system|>\n${first.system}<|end|>\n<|user|>\n${first.user}<|end|>\n<|assistant|>\n${first.answer}<|end|>\n`, { parseSpecial: true }).length);
  assert.equal(col(df, 'prompt_tokens')[row], chatTokenCounts(first, tok).prompt);

  const empty = await samplesFrame({ train: [], validation: [], test: [] });
  assert.deepEqual(empty.shape, [0, 7]);
});

test('labelCounts: label × split counts equal the splits (auditor categories, heart risk levels)', async () => {
  for (const [task, key, opts] of [['auditor', 'category', { n: 300 }], ['heart-risk', 'risk_level', { incomplete: 20 }]] as const) {
    const { splits } = await buildDataset(task, opts);
    const want = expectedCounts(splits, key);
    const fromSplits = await labelCounts(splits);
    const fromFrame = await labelCounts(await samplesFrame(splits));
    for (const lc of [fromSplits, fromFrame]) {
      assert.deepEqual(lc.columns, ['label', 'train', 'validation', 'test', 'total']);
      assert.equal(lc.shape[0], want.size, task);
      col(lc, 'label').forEach((label, i) => {
        const c = want.get(String(label));
        assert.ok(c, `unexpected label ${String(label)}`);
        for (const n of SPLIT_NAMES) assert.equal(col(lc, n)[i], c[n], `${task} ${String(label)} ${n}`);
        assert.equal(col(lc, 'total')[i], c.train + c.validation + c.test);
      });
      for (const n of SPLIT_NAMES) assert.equal((col(lc, n) as number[]).reduce((a, b) => a + b, 0), splits[n].length);
    }
    if (task === 'heart-risk') for (const l of want.keys()) assert.ok(['high', 'moderate', 'low'].includes(l), l);
  }
  const onlyTest = await labelCounts((await buildDataset('auditor', { n: 300 })).splits, { split: 'test' });
  assert.deepEqual([...new Set(col(onlyTest, 'train'))], [0]);
});

test('describeLengths: describe() of the token lengths matches counts computed here', async () => {
  const tok = await phi3Tokenizer();
  const { splits } = await buildDataset('auditor', { n: 300 });
  const totals = all(splits).map(([, s]) => chatTokenLength(s, tok));
  const d = await describeLengths(splits);
  assert.deepEqual(d.columns, ['prompt_tokens', 'answer_tokens', 'total_tokens']);
  const stat = (name: string): number => Number(col(d, 'total_tokens')[(d.index as string[]).indexOf(name)]);
  assert.equal(stat('count'), 300);
  assert.equal(stat('min'), Math.min(...totals));
  assert.equal(stat('max'), Math.max(...totals));
  assert.ok(Math.abs(stat('mean') - totals.reduce((a, b) => a + b, 0) / totals.length) < 1e-9);

  const testOnly = await describeLengths(await samplesFrame(splits, { tokenizer: tok }), { split: 'test' });
  assert.equal(Number(col(testOnly, 'answer_tokens')[0]), splits.test.length);

  await assert.rejects(
    describeLengths(await samplesFrame(splits)),
    (e) => e instanceof CliniloraError && e.code === 'E_ARG' && e.message.includes('prompt_tokens') && e.message.includes('tokenizer'),
  );
});

test('lengthHistogram: plain bins that hold every sample once, per split', async () => {
  const tok = await phi3Tokenizer();
  const { splits } = await buildDataset('auditor', { n: 300 });
  const values = all(splits).map(([n, s]) => ({ n, v: chatTokenLength(s, tok) }));

  const h = await lengthHistogram(splits, { binWidth: 32 });
  assert.equal(h.column, 'total_tokens');
  assert.equal(h.bins.reduce((a, b) => a + b.count, 0), 300);
  for (const n of SPLIT_NAMES) assert.equal(h.bins.reduce((a, b) => a + b[n], 0), splits[n].length);
  for (const b of h.bins) {
    assert.equal(b.lo % 32, 0);
    assert.equal(b.hi - b.lo, 32);
    assert.equal(b.count, values.filter(({ v }) => v >= b.lo && v < b.hi).length);
    assert.equal(b.count, b.train + b.validation + b.test);
  }

  const df = await samplesFrame(splits);
  const h5 = await lengthHistogram(df, { column: 'answer_chars', bins: 5 });
  assert.equal(h5.bins.length, 5);
  const chars = all(splits).map(([, s]) => s.answer.length);
  assert.equal(h5.bins[0]!.lo, Math.min(...chars));
  assert.ok(Math.abs(h5.bins[4]!.hi - Math.max(...chars)) < 1e-9);
  assert.equal(h5.bins[4]!.count, chars.filter((c) => c >= h5.bins[4]!.lo).length, 'the last bin holds the maximum');
  assert.equal(h5.bins.reduce((a, b) => a + b.count, 0), 300);

  assert.deepEqual((await lengthHistogram({ train: [], validation: [], test: [] }, { column: 'answer_chars' })).bins, []);
  await assert.rejects(lengthHistogram(df, { column: 'answer_chars', bins: 0 }), (e) => e instanceof CliniloraError && e.message.includes('bins'));
});

test('plain helpers: countLabels and summarizeLengths on hand-made rows', () => {
  const rows: SampleRow[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((v, i) => ({
    id: `s${i}`,
    split: i < 7 ? 'train' : i < 9 ? 'validation' : 'test',
    task: 'instruct',
    source: `r${i}`,
    label: i % 2 === 0 ? 'even' : 'odd',
    prompt_chars: v,
    answer_chars: 0,
  }));
  assert.deepEqual(countLabels(rows), [
    { label: 'even', train: 4, validation: 1, test: 0, total: 5 },
    { label: 'odd', train: 3, validation: 1, test: 1, total: 5 },
  ]);
  assert.deepEqual(summarizeLengths(rows, 'prompt_chars'), { count: 10, mean: 5.5, min: 1, p50: 5, p95: 10, max: 10 });
  assert.equal(summarizeLengths(rows, 'total_tokens').count, 0);
  assert.equal(sampleRows({ train: [], validation: [], test: [] }).length, 0);
});
