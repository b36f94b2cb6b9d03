import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import {
  TASKS,
  buildAndWriteDataset,
  buildDataset,
  chatTokenCounts,
  chatTokenLength,
  cliniloraHome,
  defaultDatasetDir,
  loadTaskDataset,
  packageRoot,
  parseTask,
  phi3TokenCounter,
  phi3Tokenizer,
  writeTaskDataset,
  type Task,
} from '../src/data/index.ts';
import { buildManifest } from '../src/data/manifest.ts';
import { SPLIT_NAMES, type Sample } from '../src/data/sample.ts';
import type { Splits } from '../src/data/split.ts';
import { estimateTokensByChars } from '../src/data/alpacare/index.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-registry-'));
// Anything that falls back to the default directory lands in a temp dir, never in the repo.
process.env.CLINILORA_HOME = tmp();
const ids = (splits: Splits): string[][] => SPLIT_NAMES.map((n) => splits[n].map((s) => s.id));

/** Runs f (awaited, if async) with CLINILORA_HOME set to `home` (unset for undefined). */
async function withHome<T>(home: string | undefined, f: () => T | Promise<T>): Promise<T> {
  const old = process.env.CLINILORA_HOME;
  if (home === undefined) delete process.env.CLINILORA_HOME;
  else process.env.CLINILORA_HOME = home;
  try {
    return await f();
  } finally {
    if (old === undefined) delete process.env.CLINILORA_HOME;
    else process.env.CLINILORA_HOME = old;
  }
}

function isArgError(e: unknown, ...mentions: string[]): boolean {
  assert.ok(e instanceof CliniloraError, `expected a CliniloraError, got ${String(e)}`);
  assert.equal(e.code, 'E_ARG');
  for (const m of mentions) assert.ok(e.message.includes(m), `message should name ${m}: ${e.message}`);
  return true;
}

/** Writes a dataset directory by hand, bypassing writeDataset (and so its leakage check). */
function writeRaw(dir: string, splits: Splits, manifest: ReturnType<typeof buildManifest>): void {
  mkdirSync(dir, { recursive: true });
  for (const n of SPLIT_NAMES) writeFileSync(join(dir, `${n}.jsonl`), splits[n].map((s) => `${JSON.stringify(s)}\n`).join(''));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

function rebuiltManifest(splits: Splits, from: ReturnType<typeof buildManifest>): ReturnType<typeof buildManifest> {
  const { task, seed, ratios, generator, options, sources, dropped } = from;
  return buildManifest({ task, seed, ratios, generator, options, sources, dropped }, splits);
}

test('unknown task: an error listing every task', async () => {
  assert.deepEqual([...TASKS], ['auditor', 'heart-risk', 'alpacare']);
  assert.throws(() => parseTask('auditr'), (e) => isArgError(e, 'auditr', ...TASKS));
  assert.throws(() => parseTask(undefined), (e) => isArgError(e, ...TASKS));
  await assert.rejects(buildDataset('heart' as Task), (e) => isArgError(e, 'heart', ...TASKS));
  assert.throws(() => loadTaskDataset('nope' as Task, tmp()), (e) => isArgError(e, 'nope', 'alpacare'));
  assert.equal(parseTask('heart-risk'), 'heart-risk');
});

test('defaultDatasetDir: package root from the module (not the cwd), CLINILORA_HOME replaces it', async () => {
  const cwd = process.cwd();
  const elsewhere = tmp();
  process.chdir(elsewhere);
  try {
    const root = await withHome(undefined, () => packageRoot());
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
    assert.equal(pkg.name, 'clinilora');
    assert.equal(await withHome(undefined, () => defaultDatasetDir('auditor')), join(root, 'data', 'generated', 'auditor'));
    assert.equal(await withHome('', () => cliniloraHome()), root);
    const home = tmp();
    assert.equal(await withHome(home, () => defaultDatasetDir('heart-risk')), join(home, 'data', 'generated', 'heart-risk'));
    assert.equal(await withHome(home, () => defaultDatasetDir('alpacare', elsewhere)), join(elsewhere, 'data', 'generated', 'alpacare'));
  } finally {
    process.chdir(cwd);
  }
});

test('auditor: same seed gives the same manifest and byte-identical files; another seed other data', async () => {
  const a = await buildDataset('auditor', { n: 300 });
  const b = await buildDataset('auditor', { n: 300, seed: 42 });
  assert.equal(a.manifest.sha256, b.manifest.sha256);
  assert.deepEqual(ids(a.splits), ids(b.splits));
  assert.equal(a.splits.train.length + a.splits.validation.length + a.splits.test.length, 300);
  const c = await buildDataset('auditor', { n: 300, seed: 7 });
  assert.notEqual(c.manifest.sha256, a.manifest.sha256);
  assert.notDeepEqual(ids(c.splits), ids(a.splits));

  const d1 = (await buildAndWriteDataset('auditor', { n: 300 }, join(tmp(), 'a'))).dir;
  const d2 = (await buildAndWriteDataset('auditor', { n: 300 }, join(tmp(), 'b'))).dir;
  const files = readdirSync(d1).sort();
  assert.deepEqual(files, ['manifest.json', 'test.jsonl', 'train.jsonl', 'validation.jsonl']);
  assert.deepEqual(readdirSync(d2).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(d1, f)).equals(readFileSync(join(d2, f))), `${f} differs`);
  const onDisk = JSON.parse(readFileSync(join(d1, 'manifest.json'), 'utf8')) as { sha256: string };
  assert.equal(onDisk.sha256, a.manifest.sha256);
});

test('heart-risk and alpacare: deterministic by seed', async () => {
  for (const [task, opts] of [['heart-risk', { incomplete: 30 }], ['alpacare', {}]] as const) {
    const a = await buildDataset(task, opts);
    const b = await buildDataset(task, opts);
    assert.equal(a.manifest.task, task);
    assert.equal(a.manifest.sha256, b.manifest.sha256, task);
    assert.deepEqual(ids(a.splits), ids(b.splits), task);
    const c = await buildDataset(task, { ...opts, seed: 1 });
    assert.notDeepEqual(ids(c.splits), ids(a.splits), task);
  }
});

test('the real Phi-3 tokenizer counts tokens (loaded once)', async () => {
  const tok = await phi3Tokenizer();
  assert.equal(await phi3Tokenizer(), tok);
  const count = await phi3TokenCounter();
  const text = 'Ejection fraction 25% (severely reduced); serum sodium 131 mEq/L — hyponatraemia.';
  assert.equal(count(text), tok.encode(text).length);
  assert.notEqual(count(text), estimateTokensByChars(text));

  const { splits } = await buildDataset('auditor', { n: 300 });
  const s = splits.train[0]!;
  // the builder got the real counter: its per-sample counts are tokenizer counts
  const meta = s.meta.tokens as { prompt: number; answer: number };
  assert.equal(meta.answer, tok.encode(s.answer).length);
  assert.equal(meta.prompt, tok.encode(`${s.system}\n${s.user}`).length);

  // chat-formatted length: the whole template, prompt up to and including <|assistant|>
  const prompt = `<|system|>\n${s.system}<|end|>\n<|user|>\n${s.user}<|end|>\n<|assistant|>`;
  const full = `${prompt}\n${s.answer}<|end|>\n`;
  const n = tok.encode(full, { parseSpecial: true }).length;
  assert.equal(chatTokenLength(s, tok), n);
  const c = chatTokenCounts(s, tok);
  assert.equal(c.total, n);
  assert.equal(c.prompt, tok.encode(prompt, { parseSpecial: true }).length);
  assert.equal(c.prompt + c.answer, c.total);
  assert.ok(c.answer > meta.answer, 'answer tokens include the closing <|end|>');

  const alp = await buildDataset('alpacare', {});
  assert.equal(alp.manifest.options.token_counter, 'phi3TokenCount');
});

test('maxTokens drops long samples by real token counts; options that do not apply are errors', async () => {
  const all = await buildDataset('auditor', { n: 300 });
  const totals = SPLIT_NAMES.flatMap((n) => all.splits[n]).map((s) => {
    const t = s.meta.tokens as { prompt: number; answer: number };
    return t.prompt + t.answer;
  });
  const limit = [...totals].sort((a, b) => a - b)[150]!;
  const expectDropped = totals.filter((t) => t > limit).length;
  const cut = await buildDataset('auditor', { n: 300, maxTokens: limit });
  assert.equal(cut.manifest.dropped.too_long, expectDropped);
  assert.ok(expectDropped > 0);
  const tok = await phi3Tokenizer();
  for (const s of SPLIT_NAMES.flatMap((n) => cut.splits[n])) {
    assert.ok(tok.encode(`${s.system}\n${s.user}`).length + tok.encode(s.answer).length <= limit);
  }

  await assert.rejects(buildDataset('auditor', { incomplete: 5 }), (e) => isArgError(e, 'incomplete', 'heart-risk'));
  await assert.rejects(buildDataset('heart-risk', { maxTokens: 100 }), (e) => isArgError(e, 'maxTokens'));
  await assert.rejects(buildDataset('heart-risk', { source: 'x.jsonl' }), (e) => isArgError(e, 'source', 'alpacare'));
  await assert.rejects(buildDataset('auditor', { n: 0 }), (e) => isArgError(e, 'n'));
  await assert.rejects(buildDataset('auditor', { n: 2.5 }), (e) => isArgError(e, 'n'));
});

test('write and load: round trip, default dir under CLINILORA_HOME, clear hint when missing', async () => {
  const home = tmp();
  const written = await withHome(home, () => buildAndWriteDataset('heart-risk', { incomplete: 20 }));
  assert.equal(written.dir, join(home, 'data', 'generated', 'heart-risk'));
  const loaded = await withHome(home, () => loadTaskDataset('heart-risk'));
  assert.equal(loaded.manifest.sha256, written.manifest.sha256);
  assert.deepEqual(ids(loaded.splits), ids(written.splits));
  assert.deepEqual(loaded.splits.test[0], written.splits.test[0]);

  const empty = tmp();
  assert.throws(
    () => loadTaskDataset('auditor', empty),
    (e) => e instanceof CliniloraError && e.code === 'E_MISSING' && e.message.includes('clinilora data build auditor') && e.message.includes(empty),
  );
  assert.throws(() => loadTaskDataset('alpacare', written.dir), (e) => e instanceof CliniloraError && e.code === 'E_FORMAT' && /another task/.test(e.message));
});

test('leakage is checked on write (nothing written) and again on load', async () => {
  const { splits, manifest } = await buildDataset('auditor', { n: 300 });
  const copy = (s: Sample, patch: Partial<Sample> = {}): Sample => ({ ...s, meta: { ...s.meta }, ...patch });

  // the same sample in train and test
  const leaked: Splits = { train: splits.train, validation: splits.validation, test: [...splits.test, copy(splits.train[0]!)] };
  const dir = join(tmp(), 'leak');
  assert.throws(
    () => writeTaskDataset('auditor', { splits: leaked, manifest: rebuiltManifest(leaked, manifest) }, dir),
    (e) => e instanceof CliniloraError && e.code === 'E_FORMAT' && /leakage/.test(e.message) && e.message.includes(splits.train[0]!.id),
  );
  assert.equal(existsSync(dir), false);

  // a different sample from the same source record in two splits
  const bySource: Splits = { ...splits, test: splits.test.map((s, i) => (i === 0 ? copy(s, { source: splits.train[3]!.source }) : s)) };
  assert.throws(
    () => writeTaskDataset('auditor', { splits: bySource, manifest: rebuiltManifest(bySource, manifest) }, dir),
    (e) => e instanceof CliniloraError && /source record/.test(e.message) && e.message.includes(splits.train[3]!.source),
  );
  assert.equal(existsSync(dir), false);

  // edited on disk, manifest re-hashed to match: load still finds the leak
  const raw = join(tmp(), 'raw');
  writeRaw(raw, leaked, rebuiltManifest(leaked, manifest));
  assert.throws(() => loadTaskDataset('auditor', raw), (e) => e instanceof CliniloraError && /leakage/.test(e.message));

  // a sample appended to a split file without touching the manifest
  const good = writeTaskDataset('auditor', { splits, manifest }, join(tmp(), 'good'));
  assert.equal(loadTaskDataset('auditor', good.dir).manifest.sha256, manifest.sha256);
  appendFileSync(join(good.dir, 'test.jsonl'), `${JSON.stringify(splits.train[1])}\n`);
  assert.throws(() => loadTaskDataset('auditor', good.dir), (e) => e instanceof CliniloraError && /does not match the manifest/.test(e.message));
});
