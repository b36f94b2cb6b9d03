/**
 * Run records as a table (`runs export`): one row per run with the flattened config (`config.*`)
 * and the final metrics (`metrics.*`), as CSV, JSON, or a danfojs DataFrame in code.
 *
 * danfojs-node is CommonJS and slow to load (it brings tfjs), so it is imported on first use only
 * (the pattern of src/data/frame.ts); the CSV/JSON paths never load it.
 */
import type { DataFrame } from 'danfojs-node';
import { CliniloraError } from '../errors.ts';
import { findRuns, flattenObject, summarizeRun, type RunFilter } from './compare.ts';
import type { RunRecord } from './schema.ts';

export type Cell = string | number | boolean | null;
export type RunRow = Record<string, Cell>;

/** The fixed columns, before the sorted `config.*` and `metrics.*` ones. */
export const BASE_COLUMNS = ['id', 'name', 'task', 'kind', 'status', 'started', 'ended', 'seed', 'steps', 'tags', 'config_hash', 'git_commit', 'git_dirty', 'data_sha256'] as const;

const cell = (v: unknown): Cell =>
  v === undefined || v === null ? null : typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v);

/** One row per record; `status` is the effective one (stale running → crashed). */
export function runRow(r: RunRecord, now = Date.now()): RunRow {
  const s = summarizeRun(r, now);
  const row: RunRow = {
    id: r.id,
    name: r.name,
    task: r.task,
    kind: r.kind,
    status: s.status,
    started: r.times.started,
    ended: r.times.ended,
    seed: r.seed,
    steps: s.steps,
    tags: r.tags.join(';'),
    config_hash: r.configHash,
    git_commit: r.git.commit,
    git_dirty: r.git.dirty,
    data_sha256: r.data?.manifestSha256 ?? null,
  };
  for (const [k, v] of Object.entries(flattenObject(r.config))) row[`config.${k}`] = cell(v);
  for (const [k, v] of Object.entries(r.metrics ?? {})) row[`metrics.${k}`] = v;
  return row;
}

/** The columns of a set of rows: the fixed ones, then config.* and metrics.* (sorted). */
export function rowColumns(rows: readonly RunRow[]): string[] {
  const extra = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (!(BASE_COLUMNS as readonly string[]).includes(k)) extra.add(k);
  const sorted = [...extra].sort();
  return [...BASE_COLUMNS, ...sorted.filter((k) => k.startsWith('config.')), ...sorted.filter((k) => !k.startsWith('config.'))];
}

/** RFC 4180 CSV: a header line, then one line per row; absent values are empty cells. */
export function toCsv(rows: readonly RunRow[], columns = rowColumns(rows)): string {
  const quote = (v: Cell | undefined): string => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.map(quote), ...rows.map((r) => columns.map((c) => quote(r[c])))].map((l) => l.join(',')).join('\n') + '\n';
}

export interface ExportOptions {
  root?: string;
  filter?: RunFilter;
  now?: number;
}

/** Rows of the runs matching the filter, newest first. */
export function runRows(opts: ExportOptions = {}): RunRow[] {
  const now = opts.now ?? Date.now();
  const { runs } = findRuns(opts.filter ?? {}, { ...(opts.root !== undefined ? { root: opts.root } : {}), now });
  return runs.map((r) => runRow(r, now));
}

/** `runs export` as text: CSV, or JSON (an array of row objects with every column present). */
export function exportRuns(format: 'csv' | 'json', opts: ExportOptions = {}): string {
  const rows = runRows(opts);
  const columns = rowColumns(rows);
  if (format === 'csv') return toCsv(rows, columns);
  if (format === 'json') return `${JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))), null, 2)}\n`;
  throw new CliniloraError('E_ARG', `unknown export format '${String(format)}'`, { field: '--format', expected: 'csv | json', found: String(format) });
}

type Danfo = typeof import('danfojs-node');
let danfo: Promise<Danfo> | undefined;
function loadDanfo(): Promise<Danfo> {
  danfo ??= import('danfojs-node');
  return danfo;
}

/**
 * The runs as a danfojs DataFrame (columns as in `runs export`). A column whose values are all
 * numbers stays numeric with NaN where a run lacks it; any other column holds strings ('' if absent).
 */
export async function runsFrame(opts: ExportOptions = {}): Promise<DataFrame> {
  const dfd = await loadDanfo();
  const rows = runRows(opts);
  const columns = rowColumns(rows);
  if (rows.length === 0) return new dfd.DataFrame([], { columns });
  const data: Record<string, Array<string | number>> = {};
  for (const c of columns) {
    const values = rows.map((r) => r[c] ?? null);
    const numeric = values.every((v) => v === null || typeof v === 'number');
    data[c] = numeric ? values.map((v) => (v === null ? NaN : (v as number))) : values.map((v) => (v === null ? '' : String(v)));
  }
  return new dfd.DataFrame(data, { columns });
}
