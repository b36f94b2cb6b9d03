/**
 * The pretraining corpus: deterministic from its config, and free of task answers and held-out
 * inputs (the leakage contract of src/pretrain/corpus.ts and glossary.ts), checked against the task
 * datasets built independently here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCorpus, packCorpus, type Corpus, type CorpusConfig } from '../src/pretrain/corpus.ts';
import { glossaryDocument, CATEGORY_CARDS } from '../src/pretrain/glossary.ts';
import { loadPretrainConfig } from '../src/pretrain/config.ts';
import { corpusConfigOf } from '../src/pretrain/train.ts';
import { buildDataset, phi3Tokenizer } from '../src/data/index.ts';
import { AUDIT_CATEGORIES, numbersIn, renderReportJson, type AuditReport } from '../src/data/auditor/index.ts';
import { heartMeta } from '../src/data/heart/index.ts';
import { loadAdversarialSet } from '../src/data/alpacare/index.ts';
import { Rng } from '../src/util/random.ts';

// The shipped config's corpus, with fewer generated documents (the protection logic is the same).
const shipped = corpusConfigOf(loadPretrainConfig('experiments/base/phi3-nano.yaml'));
const cfg: CorpusConfig = { ...shipped, auditor: { ...shipped.auditor, fresh: 300 }, glossaryDocs: 200 };

let built: Promise<Corpus> | undefined;
const corpus = (): Promise<Corpus> => (built ??= buildCorpus(cfg));

/** Every sentence (or line) of a text, whitespace collapsed, at least 25 characters. */
function sentences(text: string): string[] {
  return text.split(/\n+|(?<=[.;])\s+/).map((s) => s.replace(/\s+/g, ' ').trim()).filter((s) => s.length >= 25);
}

test('same config, same documents; another seed, another corpus', async () => {
  const a = await corpus();
  const b = await buildCorpus(cfg);
  assert.equal(a.docs.length, b.docs.length);
  assert.deepEqual(a.docs.map((d) => d.text), b.docs.map((d) => d.text));
  const small: CorpusConfig = { ...cfg, seed: cfg.seed + 1 };
  const c = await buildCorpus(small);
  assert.notDeepEqual(c.docs.slice(0, 20).map((d) => d.text), a.docs.slice(0, 20).map((d) => d.text));
  const tok = await phi3Tokenizer();
  const p1 = packCorpus(a.docs.slice(0, 200), tok, 64);
  const p2 = packCorpus(b.docs.slice(0, 200), tok, 64);
  assert.deepEqual(p1.sequences, p2.sequences);
  assert.ok(p1.sequences.every((s) => s.length === 64));
  assert.equal(Object.values(p1.tokensByPart).reduce((x, y) => x + y, 0), p1.totalTokens);
  assert.equal(p1.sequences.length, Math.floor(p1.totalTokens / 64));
});

test('no held-out auditor report and no auditor answer is in the corpus', async () => {
  const c = await corpus();
  const inCorpus = new Set<string>();
  for (const d of c.docs) for (const m of d.text.matchAll(/\{"auc":[^}]*\}/g)) inCorpus.add(m[0]);
  assert.ok(inCorpus.size > 3000, `found ${inCorpus.size} report JSON objects`);
  const corpusSentences = new Set(c.docs.flatMap((d) => sentences(d.text)));
  for (const n of [shipped.auditor.n, ...shipped.auditor.protectN]) {
    const ds = await buildDataset('auditor', { seed: shipped.datasetSeed, n });
    const held = [...ds.splits.validation, ...ds.splits.test];
    assert.ok(held.length > 0);
    for (const s of held) assert.ok(!inCorpus.has(renderReportJson(s.meta.report as AuditReport)), `held-out report of ${s.id} (n ${n}) is in the corpus`);
    for (const s of [...ds.splits.train, ...held]) {
      // The bare label line ("Category: Major Drift") is the vocabulary the glossary teaches on
      // purpose; every other sentence of every answer must be absent.
      for (const line of sentences(s.answer).filter((l) => !l.startsWith('Category:'))) assert.ok(!corpusSentences.has(line), `answer sentence of ${s.id} in the corpus: ${line}`);
    }
  }
  // The train split IS there (the corpus is not empty of reports by accident).
  const ds = await buildDataset('auditor', { seed: shipped.datasetSeed, n: shipped.auditor.n });
  const trainHits = ds.splits.train.filter((s) => inCorpus.has(renderReportJson(s.meta.report as AuditReport))).length;
  assert.ok(trainHits > 0.95 * ds.splits.train.length, `${trainHits} of ${ds.splits.train.length} train reports`);
});

test('no assistant turn, category line or risk answer in the task documents', async () => {
  const c = await corpus();
  for (const d of c.docs) {
    if (d.part === 'alpacare-train' || d.part === 'glossary') continue;
    assert.ok(!d.text.includes('<|assistant|>'), `${d.part} document has an assistant turn`);
    assert.ok(!/Explanation:|^Risk: (low|moderate|high)/m.test(d.text), `${d.part} document has an answer line`);
    for (const cat of AUDIT_CATEGORIES) assert.ok(!d.text.includes(`Category: ${cat}`), `${d.part} names a category`);
  }
});

test('heart: only train patients, no held-out narrative, no risk answer', async () => {
  const c = await corpus();
  const ds = await buildDataset('heart-risk', { seed: shipped.datasetSeed, incomplete: shipped.heart.incomplete });
  const heldPatients = new Set([...ds.splits.validation, ...ds.splits.test].map((s) => heartMeta(s).patient));
  const trainPatients = new Set(ds.splits.train.map((s) => heartMeta(s).patient));
  assert.ok(heldPatients.size > 0 && c.heartPatients.length > 0);
  for (const p of c.heartPatients) assert.ok(!heldPatients.has(p) && trainPatients.has(p), `patient ${p} is not a train patient`);
  const heartText = c.docs.filter((d) => d.part.startsWith('heart')).map((d) => d.text).join('\u0000');
  for (const s of [...ds.splits.validation, ...ds.splits.test]) {
    const narrative = s.user.split('\n\n').slice(1).join('\n\n');
    assert.ok(narrative.length > 40 && !heartText.includes(narrative), `held-out narrative of ${s.id} is in the corpus`);
  }
  const all = c.docs.map((d) => d.text).join('\u0000');
  for (const s of [...ds.splits.train, ...ds.splits.validation, ...ds.splits.test]) {
    const factors = s.answer.split('\n').find((l) => l.startsWith('Key factors:'))!;
    assert.ok(!all.includes(s.answer.split('\n')[0]! + '\n') && !all.includes(factors), `heart answer of ${s.id} is in the corpus`);
  }
});

test('AlpaCare: no held-out question and no adversarial prompt', async () => {
  const c = await corpus();
  const alp = c.docs.filter((d) => d.part === 'alpacare-train').map((d) => d.text).join('\u0000');
  assert.ok(alp.length > 10_000);
  for (const maxTokens of [shipped.alpacare.maxTokens, ...shipped.alpacare.protectMaxTokens]) {
    const ds = await buildDataset('alpacare', { seed: shipped.datasetSeed, maxTokens });
    for (const s of [...ds.splits.validation, ...ds.splits.test]) assert.ok(!alp.includes(`<|user|>\n${s.user}<|end|>`), `held-out question ${s.id} is in the corpus`);
  }
  for (const a of loadAdversarialSet()) assert.ok(!alp.includes(a.prompt), `adversarial prompt ${a.id} is in the corpus`);
});

test('glossary: answer vocabulary as targets, but no number (no threshold) at all', () => {
  const rng = new Rng(7);
  const docs = Array.from({ length: 400 }, () => glossaryDocument(rng));
  const text = docs.join('\n');
  // Numbers as the faithfulness check reads them (digits glued to letters, as in "F1", are names).
  assert.deepEqual(numbersIn(text), [], 'a glossary document holds a number');
  for (const cat of AUDIT_CATEGORIES) assert.ok(text.includes(cat), `category ${cat} never appears`);
  assert.deepEqual(CATEGORY_CARDS.map((c) => c.name), [...AUDIT_CATEGORIES]);
  for (const word of ['Category:', 'Explanation:', 'Recommendation:', 'Platt scaling', 'isotonic regression', 'class weights', 'regularisation', 'rollback', 'ECE', 'Brier', 'PSI']) {
    assert.ok(text.includes(word), `${word} never appears`);
  }
  const again = new Rng(7);
  assert.equal(glossaryDocument(again), docs[0]);
});
