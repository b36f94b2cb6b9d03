/**
 * The base model's pretraining corpus: deterministic from its config, and free of task answers.
 *
 * Parts (each document one string; chat documents use Phi-3's template and its special tokens):
 * - auditor-train: the auditor prompt (system + user turn with the report JSON) of every TRAIN-split
 *   report, with no assistant turn: no category, no explanation;
 * - auditor-fresh: reports from another seed stream, as plain "Report:" text (more JSON to read);
 * - heart-train: system + user turn (narrative) of every TRAIN-split heart sample: no risk answer;
 * - heart-fresh: more narratives of TRAIN patients only, written with another random stream;
 * - alpacare-train: AlpaCare TRAIN-split instructions with their answers (never the held-out splits,
 *   never the adversarial set, which the dataset builder already keeps out);
 * - glossary: the monitoring handbook (glossary.ts), which puts the answer vocabulary in the text.
 *
 * Protection: the held-out (validation + test) splits of every dataset build the project uses (the
 * main one and each `protect…` entry) are collected, and any auditor document holding one of their
 * reports, or AlpaCare document holding one of their questions, is dropped — a different `n` or length
 * limit reshuffles which records are held out. Heart narratives are written for train patients only.
 * The corpus follows the task builders: when they change, so does the corpus (the run records its
 * token count, and card.ts refuses to describe a run with a corpus that no longer matches).
 */
import { Rng } from '../util/random.ts';
import { applyChatTemplate, type ChatMessage } from '../tokenizer/chat.ts';
import type { Phi3Tokenizer } from '../tokenizer/index.ts';
import { buildDataset } from '../data/index.ts';
import { contentKey, type Sample } from '../data/sample.ts';
import { generateReports, renderReportJson } from '../data/auditor/index.ts';
import { heartNarrative, loadHeartRecords, patientSource, CLINICAL_FEATURES, HEART_USER_INSTRUCTION } from '../data/heart/index.ts';
import { glossaryDocument } from './glossary.ts';

export const CORPUS_PARTS = ['auditor-train', 'auditor-fresh', 'heart-train', 'heart-fresh', 'alpacare-train', 'glossary'] as const;
export type CorpusPart = (typeof CORPUS_PARTS)[number];

export interface CorpusConfig {
  /** Seeds the fresh reports, narratives, glossary and document order. */
  seed: number;
  /** Seed of the task datasets whose TRAIN splits are used (the nano configs use 42). */
  datasetSeed: number;
  auditor: {
    /** Reports in the dataset whose train split is used (auditor-nano: 4000). */
    n: number;
    /** Other dataset sizes whose held-out reports must stay out too (the CLI default 5000). */
    protectN: number[];
    /** Reports generated from the corpus seed (a stream no dataset uses). */
    fresh: number;
  };
  heart: { incomplete: number; /** Extra narratives per train patient. */ freshPerPatient: number };
  alpacare: { maxTokens: number; /** Other length limits whose held-out questions must stay out. */ protectMaxTokens: number[] };
  /** Handbook documents. */
  glossaryDocs: number;
}

export interface CorpusDoc {
  part: CorpusPart;
  text: string;
  /** Holds chat special tokens (`<|user|>` …): tokenize with parseSpecial. */
  chat: boolean;
}

export interface Corpus {
  docs: CorpusDoc[];
  /** Documents dropped because they held protected content, by part. */
  dropped: Partial<Record<CorpusPart, number>>;
  /** Heart patients (data row numbers) whose narratives are in the corpus: train patients only. */
  heartPatients: number[];
}

const reportOf = (s: Sample): string => renderReportJson(s.meta.report as Parameters<typeof renderReportJson>[0]);
const heldOut = (splits: { validation: Sample[]; test: Sample[] }): Sample[] => [...splits.validation, ...splits.test];

function chat(system: string, user: string, answer?: string): string {
  const messages: ChatMessage[] = [{ role: 'system', content: system }, { role: 'user', content: user }];
  if (answer !== undefined) messages.push({ role: 'assistant', content: answer });
  return applyChatTemplate(messages);
}

/** Builds the corpus (documents in a seeded order). Deterministic for a config. */
export async function buildCorpus(cfg: CorpusConfig): Promise<Corpus> {
  const root = new Rng(cfg.seed).split('pretrain-corpus');
  const heldReports = new Set<string>(); // report JSON of every held-out auditor sample
  const docs: CorpusDoc[] = [];
  const dropped: Partial<Record<CorpusPart, number>> = {};
  const drop = (p: CorpusPart): void => { dropped[p] = (dropped[p] ?? 0) + 1; };

  // ---- auditor
  const auditorBuilds = await Promise.all([cfg.auditor.n, ...cfg.auditor.protectN].map((n) => buildDataset('auditor', { seed: cfg.datasetSeed, n })));
  for (const b of auditorBuilds) for (const s of heldOut(b.splits)) heldReports.add(reportOf(s));
  for (const s of auditorBuilds[0]!.splits.train) {
    if (heldReports.has(reportOf(s))) { drop('auditor-train'); continue; }
    docs.push({ part: 'auditor-train', text: chat(s.system, s.user), chat: true });
  }
  const leads = ['Report:', 'Model performance report:', 'Monitoring report', 'Quarterly audit input:', 'Metrics:'];
  const leadRng = root.split('auditor-leads');
  const freshSeed = new Rng(cfg.seed).split('pretrain-fresh-reports').int(2 ** 31);
  for (const g of generateReports({ seed: freshSeed, n: cfg.auditor.fresh })) {
    const json = renderReportJson(g.report);
    if (heldReports.has(json)) { drop('auditor-fresh'); continue; }
    docs.push({ part: 'auditor-fresh', text: `${leads[leadRng.int(leads.length)]}\n${json}`, chat: false });
  }

  // ---- heart-risk: train patients only
  const heart = await buildDataset('heart-risk', { seed: cfg.datasetSeed, incomplete: cfg.heart.incomplete });
  const trainPatients = new Set(heart.splits.train.map((s) => s.source));
  for (const s of heart.splits.train) docs.push({ part: 'heart-train', text: chat(s.system, s.user), chat: true });
  const narrRng = root.split('heart-fresh');
  const heartPatients: number[] = [];
  for (const r of loadHeartRecords()) {
    if (!trainPatients.has(patientSource(r.patient))) continue;
    heartPatients.push(r.patient);
    for (let k = 0; k < cfg.heart.freshPerPatient; k++) {
      const values: Partial<Record<(typeof CLINICAL_FEATURES)[number], number>> = {};
      for (const f of CLINICAL_FEATURES) values[f] = r.values[f];
      const n = heartNarrative(values, narrRng.split(`patient-${r.patient}:${k}`));
      const text = narrRng.uniform() < 0.5 ? `${HEART_USER_INSTRUCTION}\n\n${n.text}` : n.text;
      docs.push({ part: 'heart-fresh', text, chat: false });
    }
  }

  // ---- AlpaCare: train split only, minus anything held out under another length limit
  const alpBuilds = await Promise.all([cfg.alpacare.maxTokens, ...cfg.alpacare.protectMaxTokens].map((maxTokens) => buildDataset('alpacare', { seed: cfg.datasetSeed, maxTokens })));
  const heldAlp = new Set<string>();
  for (const b of alpBuilds) for (const s of heldOut(b.splits)) heldAlp.add(contentKey({ user: s.user, answer: '' }));
  for (const s of alpBuilds[0]!.splits.train) {
    if (heldAlp.has(contentKey({ user: s.user, answer: '' }))) { drop('alpacare-train'); continue; }
    docs.push({ part: 'alpacare-train', text: chat(s.system, s.user, s.answer), chat: true });
  }

  // ---- glossary
  const gRng = root.split('glossary');
  for (let i = 0; i < cfg.glossaryDocs; i++) docs.push({ part: 'glossary', text: glossaryDocument(gRng), chat: false });

  root.split('order').shuffle(docs);
  return { docs, dropped, heartPatients };
}

export interface PackedCorpus {
  /** Sequences of exactly `seqLen` tokens. */
  sequences: Int32Array[];
  /** Tokens per part (separators included with the document before them). */
  tokensByPart: Record<CorpusPart, number>;
  docsByPart: Record<CorpusPart, number>;
  totalTokens: number;
}

/**
 * Tokenizes the documents, joins them with `<|endoftext|>` (the model learns where a text ends) and
 * cuts the stream into `seqLen`-token sequences; the remainder shorter than a sequence is dropped.
 */
export function packCorpus(docs: readonly CorpusDoc[], tok: Phi3Tokenizer, seqLen: number): PackedCorpus {
  const eos = tok.tokenToId('<|endoftext|>')!;
  const tokensByPart = Object.fromEntries(CORPUS_PARTS.map((p) => [p, 0])) as Record<CorpusPart, number>;
  const docsByPart = Object.fromEntries(CORPUS_PARTS.map((p) => [p, 0])) as Record<CorpusPart, number>;
  const stream: number[] = [];
  for (const d of docs) {
    const ids = tok.encode(d.text, { parseSpecial: d.chat });
    for (const id of ids) stream.push(id);
    stream.push(eos);
    tokensByPart[d.part] += ids.length + 1;
    docsByPart[d.part] += 1;
  }
  const sequences: Int32Array[] = [];
  for (let s = 0; s + seqLen <= stream.length; s += seqLen) sequences.push(Int32Array.from(stream.slice(s, s + seqLen)));
  return { sequences, tokensByPart, docsByPart, totalTokens: stream.length };
}
