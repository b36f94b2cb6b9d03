/**
 * Comparing run records (issue 5's `runs ls/show/diff/rm/tag`): the library under `clinilora runs`.
 * A diff shows only what differs (MLflow/ClearML's comparison habit): flattened config keys, data
 * manifests down to sample-ID sets, git, environment, and final metrics with deltas b − a.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SplitManifest } from '../data/manifest.ts';
import { CliniloraError } from '../errors.ts';
import { effectiveStatus, stepSeries, type RunRecord, type RunStatus } from './schema.ts';
import { listRuns, readRun, RUN_FILE, runsDir, type RunListing } from './store.ts';
import { editDistance } from '../util/text.ts';

// --- finding runs ----------------------------------------------------------------------------------

/** Run ids present under the runs directory (directories holding a run.json), newest first. */
export function runIds(root?: string): string[] {
  const dir = runsDir(root);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && existsSync(join(dir, d.name, RUN_FILE)))
    .map((d) => d.name)
    .sort()
    .reverse();
}

/** Up to `n` ids nearest to `ref` (shared prefix first, then edit distance). */
export function nearestIds(ref: string, ids: readonly string[], n = 3): string[] {
  const prefix = (id: string): number => {
    let i = 0;
    while (i < id.length && i < ref.length && id[i] === ref[i]) i++;
    return i;
  };
  return [...ids].sort((x, y) => prefix(y) - prefix(x) || editDistance(ref, x) - editDistance(ref, y) || (x < y ? 1 : -1)).slice(0, n);
}

/**
 * A run id from what the user typed: an exact id, or a unique prefix of one (like git). Unknown or
 * ambiguous: CliniloraError naming the reference and listing the nearest (or matching) ids.
 */
export function resolveRunId(ref: string, opts: { root?: string } = {}): string {
  const ids = runIds(opts.root);
  if (ids.includes(ref)) return ref;
  const matches = ref.length > 0 ? ids.filter((id) => id.startsWith(ref)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new CliniloraError('E_ARG', `run id '${ref}' is ambiguous`, { field: 'id', found: `${matches.length} runs`, hint: `matching: ${matches.slice(0, 5).join(', ')}` });
  }
  const near = nearestIds(ref, ids);
  throw new CliniloraError('E_MISSING', `no run '${ref}'`, {
    file: runsDir(opts.root),
    hint: near.length > 0 ? `nearest: ${near.join(', ')}` : "there are no runs yet (see 'clinilora runs ls')",
  });
}

/** Reads a run by id, unique id prefix or path to its run.json or directory. */
export function findRun(ref: string, opts: { root?: string } = {}): RunRecord {
  if (ref.includes('/') || ref.includes('\\') || ref.endsWith('.json')) return readRun(ref, opts);
  return readRun(resolveRunId(ref, opts), opts);
}

// --- listing ---------------------------------------------------------------------------------------

export interface RunFilter {
  task?: string;
  /** Compared with the effective status (a stale 'running' record is 'crashed'). */
  status?: RunStatus;
  tag?: string;
  kind?: string;
}

/** The metric shown per task in `runs ls` (first one present wins), then training loss. */
export const KEY_METRICS: Readonly<Record<string, readonly string[]>> = {
  auditor: ['accuracy', 'f1_weighted'],
  'heart-risk': ['auc', 'accuracy'],
  alpacare: ['perplexity', 'violation_rate'],
};
const FALLBACK_METRICS = ['final_loss', 'best_val_loss'];

export interface RunSummary {
  id: string;
  name: string;
  task: string;
  kind: string;
  /** Effective status: 'crashed' for a stale running record. */
  status: RunStatus;
  started: string;
  ended: string | null;
  /** Highest step logged. */
  steps: number;
  tags: string[];
  /** The task's key final metric; for a run without final metrics, the last logged loss. */
  metric: { name: string; value: number } | null;
}

export function keyMetric(r: RunRecord): RunSummary['metric'] {
  if (r.metrics !== null) {
    // A reproduce run's one number is its verdict (1 reproduced, 0 not).
    const keys = r.kind === 'reproduce' ? ['reproduced'] : [...(KEY_METRICS[r.task] ?? []), ...FALLBACK_METRICS];
    for (const k of keys) {
      const v = r.metrics[k];
      if (typeof v === 'number') return { name: k, value: v };
    }
  }
  const steps = stepSeries(r);
  for (let i = steps.length - 1; i >= 0; i--) {
    const loss = steps[i]!.loss;
    if (loss !== null) return { name: 'loss', value: loss };
  }
  return null;
}

export function summarizeRun(r: RunRecord, now = Date.now()): RunSummary {
  const steps = stepSeries(r);
  return {
    id: r.id,
    name: r.name,
    task: r.task,
    kind: r.kind,
    status: effectiveStatus(r, now),
    started: r.times.started,
    ended: r.times.ended,
    steps: steps.length > 0 ? steps[steps.length - 1]!.step : 0,
    tags: [...r.tags],
    metric: keyMetric(r),
  };
}

export function matchesFilter(r: RunRecord, f: RunFilter, now = Date.now()): boolean {
  return (
    (f.task === undefined || r.task === f.task) &&
    (f.kind === undefined || r.kind === f.kind) &&
    (f.status === undefined || effectiveStatus(r, now) === f.status) &&
    (f.tag === undefined || r.tags.includes(f.tag))
  );
}

/** Runs matching the filter, newest first (by start time, then id), and the unreadable records. */
export function findRuns(filter: RunFilter = {}, opts: { root?: string; now?: number } = {}): RunListing {
  const now = opts.now ?? Date.now();
  const all = listRuns(opts.root !== undefined ? { root: opts.root } : {});
  const runs = all.runs
    .filter((r) => matchesFilter(r, filter, now))
    .sort((a, b) => Date.parse(b.times.started) - Date.parse(a.times.started) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return { runs, broken: all.broken };
}

// --- diff ------------------------------------------------------------------------------------------

/** Nested objects → `a.b.c` keys; arrays and empty objects are leaves. */
export function flattenObject(value: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  const isPlain = value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value as object).length > 0;
  if (!isPlain) {
    if (prefix !== '') out[prefix] = value;
    return out;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) flattenObject(v, prefix === '' ? k : `${prefix}.${k}`, out);
  return out;
}

export const same = (x: unknown, y: unknown): boolean => x === y || JSON.stringify(x) === JSON.stringify(y);

/** A value that differs; `undefined` means the key is absent on that side. */
export interface ValueChange {
  key: string;
  a: unknown;
  b: unknown;
}

/** The keys of two flat maps whose values differ (absence counts), sorted. */
export function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): ValueChange[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => !same(a[k], b[k])).map((k) => ({ key: k, a: a[k], b: b[k] }));
}

/** Flattened config keys whose values are not the same in all the runs, with each run's value. */
export function configDiff(records: readonly Pick<RunRecord, 'config'>[]): { key: string; values: unknown[] }[] {
  const flat = records.map((r) => flattenObject(r.config));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  return keys.map((key) => ({ key, values: flat.map((f) => f[key]) })).filter(({ values }) => values.some((v) => !same(v, values[0])));
}

export interface MetricChange {
  key: string;
  a: number | null;
  b: number | null;
  /** b − a, when both exist. */
  delta: number | null;
}

export interface SampleSetDiff {
  split: string;
  onlyA: number;
  onlyB: number;
  /** First few ids (manifest order) present only in a / only in b. */
  firstOnlyA: string[];
  firstOnlyB: string[];
}

export interface RunDiff {
  a: string;
  b: string;
  /** Record-level fields: name, task, kind, status, seed, steps, parents, tags. */
  run: ValueChange[];
  config: ValueChange[];
  data: { changes: ValueChange[]; samples: SampleSetDiff[]; notes: string[] };
  git: ValueChange[];
  env: ValueChange[];
  metrics: MetricChange[];
}

const SAMPLE_IDS_SHOWN = 5;

/** The split manifest a run copied next to its record, or null (with why) when unreadable. */
export function runManifest(r: RunRecord, root?: string): { manifest: SplitManifest | null; note?: string } {
  if (r.data === null) return { manifest: null };
  const file = join(runsDir(root), r.id, r.data.manifestFile);
  if (!existsSync(file)) return { manifest: null, note: `${r.id}: manifest ${file} is missing` };
  try {
    return { manifest: JSON.parse(readFileSync(file, 'utf8')) as SplitManifest };
  } catch (e) {
    return { manifest: null, note: `${r.id}: manifest ${file} is not JSON (${(e as Error).message})` };
  }
}

function dataDiff(a: RunRecord, b: RunRecord, root?: string): RunDiff['data'] {
  const out: RunDiff['data'] = { changes: [], samples: [], notes: [] };
  if (a.data === null || b.data === null) {
    if (a.data !== b.data) out.changes.push({ key: 'data', a: a.data === null ? null : a.data.manifestSha256, b: b.data === null ? null : b.data.manifestSha256 });
    return out;
  }
  const flat = (r: RunRecord, m: SplitManifest | null): Record<string, unknown> => {
    // manifestFile is always 'manifest.json' next to the record: not a difference worth showing.
    const { manifestFile: _file, ...data } = r.data!;
    const f = flattenObject(data);
    if (m !== null) {
      for (const s of m.sources ?? []) f[`sources.${s.path}`] = s.sha256;
      f.seed = m.seed;
      for (const [k, v] of Object.entries(flattenObject(m.options ?? {}))) f[`options.${k}`] = v;
    }
    return f;
  };
  const ma = runManifest(a, root);
  const mb = runManifest(b, root);
  out.notes.push(...[ma.note, mb.note].filter((n): n is string => n !== undefined));
  out.changes = changedKeys(flat(a, ma.manifest), flat(b, mb.manifest));
  if (ma.manifest !== null && mb.manifest !== null && a.data.manifestSha256 !== b.data.manifestSha256) {
    const splits = [...new Set([...Object.keys(ma.manifest.splits), ...Object.keys(mb.manifest.splits)])];
    for (const split of splits) {
      const ia = (ma.manifest.splits as Record<string, string[]>)[split] ?? [];
      const ib = (mb.manifest.splits as Record<string, string[]>)[split] ?? [];
      const sa = new Set(ia);
      const sb = new Set(ib);
      const onlyA = ia.filter((id) => !sb.has(id));
      const onlyB = ib.filter((id) => !sa.has(id));
      if (onlyA.length + onlyB.length === 0) continue;
      out.samples.push({ split, onlyA: onlyA.length, onlyB: onlyB.length, firstOnlyA: onlyA.slice(0, SAMPLE_IDS_SHOWN), firstOnlyB: onlyB.slice(0, SAMPLE_IDS_SHOWN) });
    }
  }
  return out;
}

/** Everything that differs between two records (b compared with a). */
export function diffRecords(a: RunRecord, b: RunRecord, opts: { root?: string; now?: number } = {}): RunDiff {
  const now = opts.now ?? Date.now();
  const runFields = (r: RunRecord): Record<string, unknown> => ({
    name: r.name,
    task: r.task,
    kind: r.kind,
    status: effectiveStatus(r, now),
    seed: r.seed,
    steps: summarizeRun(r, now).steps,
    configHash: r.configHash,
    tags: [...r.tags].sort(),
    parents: r.parents.map((p) => `${p.role}:${p.id}`),
  });
  const envOf = (r: RunRecord): Record<string, unknown> => {
    // pid differs on every run: noise, not a difference in environment.
    const { pid: _pid, ...env } = r.env;
    return flattenObject(env);
  };
  const ma = a.metrics ?? {};
  const mb = b.metrics ?? {};
  const metricKeys = [...new Set([...Object.keys(ma), ...Object.keys(mb)])].sort();
  const metrics: MetricChange[] = [];
  for (const key of metricKeys) {
    const x = ma[key] ?? null;
    const y = mb[key] ?? null;
    if (x === y) continue;
    metrics.push({ key, a: x, b: y, delta: x !== null && y !== null ? y - x : null });
  }
  return {
    a: a.id,
    b: b.id,
    run: changedKeys(runFields(a), runFields(b)),
    config: changedKeys(flattenObject(a.config), flattenObject(b.config)),
    data: dataDiff(a, b, opts.root),
    git: changedKeys(flattenObject(a.git), flattenObject(b.git)),
    env: changedKeys(envOf(a), envOf(b)),
    metrics,
  };
}

/** `runs diff <a> <b>` as a library call: ids (or prefixes/paths) → the diff. */
export function diffRuns(refA: string, refB: string, opts: { root?: string; now?: number } = {}): RunDiff {
  const o = opts.root !== undefined ? { root: opts.root } : {};
  return diffRecords(findRun(refA, o), findRun(refB, o), opts);
}

export function diffIsEmpty(d: RunDiff): boolean {
  return d.run.length + d.config.length + d.data.changes.length + d.data.samples.length + d.git.length + d.env.length + d.metrics.length === 0;
}

/** A short display form of a value (absent → '(absent)'). */
export function showValue(v: unknown, max = 60): string {
  if (v === undefined) return '(absent)';
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function formatNumber(x: number | null): string {
  if (x === null) return '—';
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  // 4 significant digits, no trailing zeros: 0.0003 → 3e-4, 0.123456 → 0.1235.
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? Number(x.toPrecision(4)).toExponential() : String(Number(x.toPrecision(4)));
}

/** The diff as text, one section per kind of difference; sections with nothing are left out. */
export function formatDiff(d: RunDiff): string {
  const lines: string[] = [`a: ${d.a}`, `b: ${d.b}`];
  const section = (title: string, changes: ValueChange[]): void => {
    if (changes.length === 0) return;
    lines.push('', `${title}:`);
    const w = Math.max(...changes.map((c) => c.key.length));
    for (const c of changes) lines.push(`  ${c.key.padEnd(w)}  ${showValue(c.a)} → ${showValue(c.b)}`);
  };
  section('run', d.run);
  section('config', d.config);
  section('data', d.data.changes);
  if (d.data.samples.length > 0) {
    if (d.data.changes.length === 0) lines.push('', 'data:');
    for (const s of d.data.samples) {
      const ids = (xs: string[], n: number): string => (n === 0 ? '' : ` (${xs.join(', ')}${n > xs.length ? ', …' : ''})`);
      lines.push(`  samples.${s.split}: ${s.onlyA} only in a${ids(s.firstOnlyA, s.onlyA)}, ${s.onlyB} only in b${ids(s.firstOnlyB, s.onlyB)}`);
    }
  }
  for (const n of d.data.notes) lines.push(`  note: ${n}`);
  section('git', d.git);
  section('environment', d.env);
  if (d.metrics.length > 0) {
    lines.push('', 'metrics (delta = b − a):');
    const w = Math.max(...d.metrics.map((m) => m.key.length));
    for (const m of d.metrics) {
      const delta = m.delta === null ? '' : `  (${m.delta >= 0 ? '+' : ''}${formatNumber(m.delta)})`;
      lines.push(`  ${m.key.padEnd(w)}  ${formatNumber(m.a)} → ${formatNumber(m.b)}${delta}`);
    }
  }
  if (diffIsEmpty(d)) lines.push('', 'no differences');
  return `${lines.join('\n')}\n`;
}
