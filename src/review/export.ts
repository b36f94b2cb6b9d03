/**
 * `review export`: a run's reviewable answers → blinded packets (one CSV + one HTML form per
 * reviewer) and a private key. Blinding: items get random ids, conditions are mixed and every packet
 * has its own order; only the key (kept in `<home>/experiments/reviews/<review>/key.json`, apart from
 * the packets folder that is sent out) says which item is which sample and condition.
 * Deterministic: the same run, seed and sizes give the same review id, item ids and packets (the key
 * differs only in its creation time).
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { cliniloraHome } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { findRun } from '../tracker/compare.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { Rng } from '../util/random.ts';
import { assignItems } from './assign.ts';
import { toCsv } from './csv.ts';
import { renderForm } from './form.ts';
import { reviewSources, type AnswerSource, type ReviewSource } from './items.ts';
import { COLUMNS, INSTRUCTIONS, KEY_SCHEMA, KEY_VERSION, packetRows, type KeyItem, type PacketData, type ReviewKey } from './protocol.ts';

export interface ExportReviewOptions {
  reviewers: number;
  perReviewer: number;
  /** Default: the run's seed. */
  seed?: number;
  /** Packets folder (default `<home>/experiments/reviews/<review>/packets`). */
  out?: string;
  /** Where the key goes (default `<home>/experiments/reviews/<review>/key.json`). */
  key?: string;
  answer?: AnswerSource;
  /** Only these conditions (predictions files' `who`), default all. */
  conditions?: readonly string[];
  root?: string;
  now?: Date;
}

export interface ExportedReview {
  review: string;
  run: string;
  keyFile: string;
  packetsDir: string;
  /** Per packet: CSV and HTML paths. */
  files: { packet: string; csv: string; html: string; items: number }[];
  items: number;
  available: number;
  /** Ratings per item: min and max. */
  coverage: [number, number];
  answer: AnswerSource;
  notes: string[];
}

/** Unambiguous characters (no 0/O, 1/I/L) for item ids a reviewer may copy by hand. */
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

function itemIds(n: number, rng: Rng): string[] {
  const ids = new Set<string>();
  while (ids.size < n) ids.add(`Q${Array.from({ length: 5 }, () => ALPHABET[rng.int(ALPHABET.length)]).join('')}`);
  return [...ids];
}

export function reviewsDir(root?: string): string {
  return join(root !== undefined ? resolve(root) : cliniloraHome(), 'experiments', 'reviews');
}

/** Writes the packets and the key; nothing is written when any input is wrong. */
export function exportReview(ref: string, opts: ExportReviewOptions): ExportedReview {
  const o = opts.root !== undefined ? { root: opts.root } : {};
  const run = findRun(ref, o);
  const seed = opts.seed ?? run.seed;
  if (!Number.isInteger(seed) || seed < 0) throw new CliniloraError('E_ARG', 'bad seed', { field: '--seed', expected: 'an integer >= 0', found: String(seed) });
  const { sources, answer } = reviewSources(run, { ...o, ...(opts.answer !== undefined ? { answer: opts.answer } : {}), ...(opts.conditions !== undefined ? { conditions: opts.conditions } : {}) });
  const conditions = [...new Set(sources.map((s) => s.condition))].sort();
  const groups = conditions.map((c) => sources.filter((s) => s.condition === c));
  const rng = new Rng(seed).split('review');
  const plan = assignItems<ReviewSource>(groups, opts.reviewers, opts.perReviewer, rng.split('assign'));
  const review = `rv-${createHash('sha256').update(JSON.stringify([run.id, seed, opts.reviewers, opts.perReviewer, answer, conditions])).digest('hex').slice(0, 10)}`;
  const ids = itemIds(plan.chosen.length, rng.split('ids'));
  const items: KeyItem[] = plan.chosen.map((s, i) => ({ item: ids[i]!, ...s }));
  const width = String(opts.reviewers).length < 2 ? 2 : String(opts.reviewers).length;
  const packets = plan.packets.map((ix, j) => {
    const packet = `R${String(j + 1).padStart(width, '0')}`;
    return { packet, file: `${review}-${packet}`, items: ix.map((i) => ids[i]!) };
  });
  const counts = new Map<string, number>();
  for (const p of packets) for (const it of p.items) counts.set(it, (counts.get(it) ?? 0) + 1);
  const coverage: [number, number] = [Math.min(...counts.values()), Math.max(...counts.values())];
  const key: ReviewKey = {
    schema: KEY_SCHEMA,
    version: KEY_VERSION,
    review,
    run: run.id,
    task: run.task,
    created: (opts.now ?? new Date()).toISOString(),
    seed,
    reviewers: opts.reviewers,
    perReviewer: opts.perReviewer,
    answer,
    available: sources.length,
    items,
    packets,
  };
  const base = join(reviewsDir(opts.root), review);
  const packetsDir = resolve(opts.out ?? join(base, 'packets'));
  const keyFile = resolve(opts.key ?? join(base, 'key.json'));
  if (packetsDir === resolve(keyFile, '..')) {
    throw new CliniloraError('E_ARG', 'the key must not be written into the packets folder (it unblinds the review)', { field: '--out', found: packetsDir, hint: 'pick another --out or --key' });
  }
  const byId = new Map(items.map((it) => [it.item, it]));
  // Everything is rendered before the first write.
  const rendered = packets.map((p) => {
    const data: PacketData = {
      review,
      packet: p.packet,
      file: p.file,
      instructions: INSTRUCTIONS,
      columns: [...COLUMNS],
      items: p.items.map((id) => ({ item: id, question: byId.get(id)!.question, answer: byId.get(id)!.answer })),
    };
    return { p, csv: toCsv(packetRows(data)), html: renderForm(data) };
  });
  writeFileAtomic(keyFile, `${JSON.stringify(key, null, 2)}\n`);
  const files = rendered.map(({ p, csv, html }) => {
    const c = join(packetsDir, `${p.file}.csv`);
    const h = join(packetsDir, `${p.file}.html`);
    writeFileAtomic(c, csv);
    writeFileAtomic(h, html);
    return { packet: p.packet, csv: c, html: h, items: p.items.length };
  });
  return { review, run: run.id, keyFile, packetsDir, files, items: items.length, available: sources.length, coverage, answer, notes: plan.notes };
}
