/**
 * What a report shows, read from run records and their eval-report artifacts (the
 * `eval-<split>-<who>.json` files src/pipeline writes: `{task, split, n, metrics, report}` where
 * `report.model.confusion` is the auditor's confusion matrix and `report.reliability` the heart-risk
 * reliability curve). Plain data, no plotting: figures.ts turns it into plotly specs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { cliniloraHome } from '../data/index.ts';
import { configDiff, findRun } from '../tracker/compare.ts';
import { effectiveStatus, stepSeries, type RunRecord, type RunStatus } from '../tracker/schema.ts';

export interface ReportRun {
  id: string;
  name: string;
  task: string;
  kind: string;
  status: RunStatus;
  started: string;
  /** Legend label: name and the id's random suffix (names repeat, ids are long). */
  label: string;
}

export interface Series {
  run: string;
  label: string;
  x: number[];
  /** null where the value was not finite. */
  y: (number | null)[];
}

export interface ConfusionData {
  run: string;
  /** e.g. "auditor-train (a1b2c3) test adapter". */
  title: string;
  labels: string[];
  columns: string[];
  matrix: number[][];
}

export interface ReliabilityData {
  run: string;
  label: string;
  /** One point per non-empty bin. */
  meanPredicted: number[];
  observedRate: number[];
  count: number[];
}

export interface ReportData {
  runs: ReportRun[];
  loss: Series[];
  valLoss: Series[];
  lr: Series[];
  /** Final metrics: rows = metric names (sorted), columns = runs; null where a run lacks it. */
  metrics: { names: string[]; values: (number | null)[][] };
  confusion: ConfusionData[];
  reliability: ReliabilityData[];
  /** Flattened config keys whose values differ between the runs. */
  configDiff: { key: string; values: unknown[] }[];
  /** What could not be shown, and why (missing or unreadable artifacts). */
  notes: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function runLabel(r: RunRecord): string {
  return `${r.name} (${r.id.split('-').pop() ?? r.id})`;
}

/** An artifact's path: relative ones are under the home the record was written in. */
function artifactPath(path: string, home: string): string {
  return isAbsolute(path) ? path : join(home, path);
}

/** `eval-test-adapter.json` → "test adapter". */
function evalLabel(file: string): string {
  return basename(file, '.json').replace(/^eval-/, '').replaceAll('-', ' ');
}

function readEvalReports(r: RunRecord, home: string, notes: string[]): { label: string; report: Record<string, unknown> }[] {
  const out: { label: string; report: Record<string, unknown> }[] = [];
  for (const a of r.artifacts.filter((x) => x.kind === 'eval-report')) {
    const file = artifactPath(a.path, home);
    if (!existsSync(file)) {
      notes.push(`${r.id}: eval report ${file} is missing`);
      continue;
    }
    try {
      const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (isObj(v) && isObj(v.report)) out.push({ label: evalLabel(file), report: v.report });
      else notes.push(`${r.id}: eval report ${file} has no 'report' object`);
    } catch (e) {
      notes.push(`${r.id}: eval report ${file} is not JSON (${(e as Error).message})`);
    }
  }
  return out;
}

function confusionOf(report: Record<string, unknown>): Omit<ConfusionData, 'run' | 'title'> | null {
  const c = isObj(report.model) ? report.model.confusion : undefined;
  if (!isObj(c) || !Array.isArray(c.labels) || !Array.isArray(c.columns) || !Array.isArray(c.matrix)) return null;
  return { labels: c.labels.map(String), columns: c.columns.map(String), matrix: (c.matrix as unknown[]).map((row) => (Array.isArray(row) ? row.map(Number) : [])) };
}

function reliabilityOf(report: Record<string, unknown>): Omit<ReliabilityData, 'run' | 'label'> | null {
  if (!Array.isArray(report.reliability)) return null;
  const bins = report.reliability.filter(
    (b): b is { meanPredicted: number; observedRate: number; count: number } => isObj(b) && typeof b.count === 'number' && b.count > 0 && typeof b.meanPredicted === 'number' && typeof b.observedRate === 'number',
  );
  return { meanPredicted: bins.map((b) => b.meanPredicted), observedRate: bins.map((b) => b.observedRate), count: bins.map((b) => b.count) };
}

/** Collects a report's data from run records (`home` resolves their relative artifact paths). */
export function reportFromRecords(records: readonly RunRecord[], opts: { home?: string; now?: number } = {}): ReportData {
  const home = opts.home !== undefined ? resolve(opts.home) : cliniloraHome();
  const now = opts.now ?? Date.now();
  const notes: string[] = [];
  const data: ReportData = { runs: [], loss: [], valLoss: [], lr: [], metrics: { names: [], values: [] }, confusion: [], reliability: [], configDiff: configDiff(records), notes };
  for (const r of records) {
    const label = runLabel(r);
    data.runs.push({ id: r.id, name: r.name, task: r.task, kind: r.kind, status: effectiveStatus(r, now), started: r.times.started, label });
    const steps = stepSeries(r);
    if (steps.length > 0) {
      data.loss.push({ run: r.id, label, x: steps.map((s) => s.step), y: steps.map((s) => s.loss) });
      data.lr.push({ run: r.id, label, x: steps.map((s) => s.step), y: steps.map((s) => s.lr) });
    }
    const val = r.evals.filter((e) => e.split === 'validation' && e.step !== null && typeof e.metrics.loss === 'number');
    if (val.length > 0) data.valLoss.push({ run: r.id, label, x: val.map((e) => e.step!), y: val.map((e) => e.metrics.loss!) });
    for (const { label: which, report } of readEvalReports(r, home, notes)) {
      const c = confusionOf(report);
      if (c !== null) data.confusion.push({ run: r.id, title: `${label} ${which}`, ...c });
      const rel = r.task === 'heart-risk' ? reliabilityOf(report) : null;
      if (rel !== null) data.reliability.push({ run: r.id, label: `${label} ${which}`, ...rel });
    }
  }
  const names = [...new Set(records.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
  data.metrics = { names, values: names.map((n) => records.map((r) => r.metrics?.[n] ?? null)) };
  return data;
}

/** Reads the runs (ids, unique prefixes or paths) and collects their report data. */
export function reportData(refs: readonly string[], opts: { root?: string; now?: number } = {}): ReportData {
  const o = opts.root !== undefined ? { root: opts.root } : {};
  const records = refs.map((ref) => findRun(ref, o));
  return reportFromRecords(records, { ...(opts.root !== undefined ? { home: opts.root } : {}), ...(opts.now !== undefined ? { now: opts.now } : {}) });
}
