/**
 * `review import`: filled packets + the private key → the aggregate, recorded as a new run of kind
 * 'eval' linked to the reviewed run (parent role 'reviewed', tag 'human-review'). A new run rather
 * than an edit of the reviewed one: records stay append-only, a live writer's lock is never needed,
 * and importing again (more packets) makes another comparable record. The new run holds the filled
 * CSVs, the key and `review.json` (the full aggregate) as artifacts, the headline numbers as final
 * metrics, and one eval entry per condition (split 'human-review', 'human-review:<condition>').
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { findRun } from '../tracker/compare.ts';
import { openRun } from '../tracker/run.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { parseCsv } from './csv.ts';
import { aggregateReview, reviewMetrics, type ReviewAggregate } from './aggregate.ts';
import { reviewsDir } from './export.ts';
import { KEY_SCHEMA, KEY_VERSION, type ReviewKey } from './protocol.ts';
import { delimiterOf, readFilledPacket, type FilledPacket } from './scores.ts';

export interface ImportReviewOptions {
  /** The key file (default `<home>/experiments/reviews/<review>/key.json`, the review read from the packets). */
  key?: string;
  /** The reviewed run (checked against the key's). */
  run?: string;
  root?: string;
  /** Aggregate and print only; record nothing. */
  dryRun?: boolean;
  /** Repository whose commit the new run records (default the package root). */
  gitDir?: string;
}

export interface ImportedReview {
  aggregate: ReviewAggregate;
  metrics: Record<string, number>;
  keyFile: string;
  /** The new run (null with dryRun). */
  runId: string | null;
  runDir: string | null;
}

/** The review id a packet names (row `review,<id>`), read before the key is known. */
function reviewOf(file: string): string {
  const text = readFileSync(file, 'utf8');
  const row = parseCsv(text, file, delimiterOf(text, file)).find((r) => r.cells[0]?.trim() === 'review');
  const id = row?.cells[1]?.trim() ?? '';
  if (!/^[\w-]+$/.test(id)) throw new CliniloraError('E_FORMAT', 'the packet names no review', { file, ...(row !== undefined ? { line: row.line } : {}), field: 'review', expected: 'a review id (rv-…)', found: JSON.stringify(id) });
  return id;
}

/** Reads and checks a key file. */
export function readReviewKey(file: string): ReviewKey {
  if (!existsSync(file)) throw new CliniloraError('E_MISSING', 'review key not found', { file, hint: 'pass --key <key.json> (written by review export, next to the packets folder by default)' });
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CliniloraError('E_FORMAT', `review key is not JSON: ${(e as Error).message}`, { file });
  }
  const bad = (field: string, expected: string): CliniloraError => new CliniloraError('E_FORMAT', 'invalid review key', { file, field, expected, found: JSON.stringify(v[field])?.slice(0, 60) ?? 'nothing' });
  if (v.schema !== KEY_SCHEMA) throw bad('schema', `'${KEY_SCHEMA}'`);
  if (typeof v.version !== 'number' || v.version > KEY_VERSION) throw bad('version', `<= ${KEY_VERSION}`);
  for (const k of ['review', 'run', 'task', 'answer']) if (typeof v[k] !== 'string') throw bad(k, 'a string');
  if (!Array.isArray(v.items) || v.items.length === 0) throw bad('items', 'a non-empty list of items');
  if (!Array.isArray(v.packets) || v.packets.length === 0) throw bad('packets', 'a non-empty list of packets');
  return v as unknown as ReviewKey;
}

/** Reads, validates and aggregates filled packets; records the result unless dryRun. */
export async function importReview(files: readonly string[], opts: ImportReviewOptions = {}): Promise<ImportedReview> {
  if (files.length === 0) throw new CliniloraError('E_ARG', 'no packet files given', { field: 'files' });
  const o = opts.root !== undefined ? { root: opts.root } : {};
  const paths = files.map((f) => resolve(f));
  for (const p of paths) if (!existsSync(p)) throw new CliniloraError('E_MISSING', 'packet file not found', { file: p });
  const reviews = [...new Set(paths.map(reviewOf))];
  if (reviews.length > 1 && opts.key === undefined) {
    throw new CliniloraError('E_ARG', 'the packets belong to different reviews', { field: 'files', expected: 'packets of one review', found: reviews.join(', ') });
  }
  const keyFile = resolve(opts.key ?? join(reviewsDir(opts.root), reviews[0]!, 'key.json'));
  const key = readReviewKey(keyFile);
  if (opts.run !== undefined) {
    const id = findRun(opts.run, o).id;
    if (id !== key.run) throw new CliniloraError('E_ARG', 'the key is for another run', { file: keyFile, field: '--run', expected: key.run, found: id });
  }
  const reviewed = findRun(key.run, o);
  const packets: FilledPacket[] = [];
  for (const p of paths) {
    const f = readFilledPacket(p, key);
    const twice = packets.find((q) => q.packet === f.packet);
    if (twice !== undefined) throw new CliniloraError('E_ARG', `packet ${f.packet} given twice`, { file: p, field: 'packet', found: `also in ${twice.file}` });
    packets.push(f);
  }
  const aggregate = aggregateReview(key, packets);
  const { all, byCondition } = reviewMetrics(aggregate);
  if (opts.dryRun === true) return { aggregate, metrics: all, keyFile, runId: null, runDir: null };

  const run = await openRun({
    config: reviewed.config,
    kind: 'eval',
    task: reviewed.task,
    name: `${reviewed.task}-human-review`,
    seed: reviewed.seed,
    tags: ['human-review'],
    parents: [{ id: reviewed.id, role: 'reviewed' }],
    heartbeatMs: 0,
    ...o,
    ...(opts.gitDir !== undefined ? { gitDir: opts.gitDir } : {}),
  });
  try {
    const dir = join(run.dir, 'review');
    mkdirSync(dir, { recursive: true });
    for (const p of packets) {
      const dest = join(dir, `${p.packet}-${basename(p.file)}`);
      copyFileSync(p.file, dest);
      await run.addArtifact(dest, { kind: 'review-scores' });
    }
    const keyCopy = join(dir, 'key.json');
    copyFileSync(keyFile, keyCopy);
    await run.addArtifact(keyCopy, { kind: 'review-key' });
    const aggFile = join(dir, 'review.json');
    writeFileAtomic(aggFile, `${JSON.stringify(aggregate, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    await run.addArtifact(aggFile, { kind: 'review-aggregate' });
    for (const [c, m] of Object.entries(byCondition)) run.logEval({ step: null, split: c === aggregate.primary ? 'human-review' : `human-review:${c}`, metrics: m });
    run.finish('completed', { metrics: all });
  } catch (e) {
    run.finish('failed', { error: e });
    throw e;
  }
  return { aggregate, metrics: all, keyFile, runId: run.id, runDir: run.dir };
}
