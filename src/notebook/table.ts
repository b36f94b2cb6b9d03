/**
 * Tables for notebooks: rows of records, a column mapping, or a danfo DataFrame, as an HTML table
 * with an aligned plain-text twin; and metric tables (metric × run/model).
 */
import { escapeHtml, Rendered } from './display.ts';

export type TableCell = string | number | boolean | bigint | null | undefined;

/** What a danfojs DataFrame offers (duck-typed, so danfo need not be loaded to render one). */
export interface FrameLike {
  columns: readonly string[];
  values: readonly (readonly unknown[])[];
}

export type TableInput = readonly Record<string, TableCell>[] | Record<string, readonly TableCell[]> | FrameLike;

export interface TableOptions {
  caption?: string;
  /** Significant digits of non-integer numbers (default 4). */
  digits?: number;
  /** Columns to show, in order (default: all, in first-seen order). */
  columns?: readonly string[];
  /** Rows shown before "… n more" (default 50). */
  maxRows?: number;
}

export function isFrameLike(v: unknown): v is FrameLike {
  const f = v as Partial<FrameLike> | null;
  return f !== null && typeof f === 'object' && Array.isArray(f.columns) && Array.isArray(f.values);
}

/** A number as a reader wants it: integers whole, others to `digits` significant digits. */
export function formatCell(v: unknown, digits = 4): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
    // Large counts with thousands separators (9,437,184), as a reader compares them.
    if (Number.isInteger(v)) return Math.abs(v) >= 1e5 ? v.toLocaleString('en-US') : String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(digits - 1);
    return String(Number(v.toPrecision(digits)));
  }
  return String(v);
}

/** Rows and columns from any input form. */
function normalize(data: TableInput, only?: readonly string[]): { columns: string[]; rows: unknown[][] } {
  if (isFrameLike(data)) {
    const columns = only !== undefined ? [...only] : [...data.columns];
    const idx = columns.map((c) => data.columns.indexOf(c));
    return { columns, rows: data.values.map((r) => idx.map((i) => (i >= 0 ? r[i] : undefined))) };
  }
  if (Array.isArray(data)) {
    const recs = data as readonly Record<string, TableCell>[];
    const seen: string[] = [];
    for (const r of recs) for (const k of Object.keys(r)) if (!seen.includes(k)) seen.push(k);
    const columns = only !== undefined ? [...only] : seen;
    return { columns, rows: recs.map((r) => columns.map((c) => r[c])) };
  }
  const cols = data as Record<string, readonly TableCell[]>;
  const columns = only !== undefined ? [...only] : Object.keys(cols);
  const n = Math.max(0, ...columns.map((c) => cols[c]?.length ?? 0));
  return { columns, rows: Array.from({ length: n }, (_, i) => columns.map((c) => cols[c]?.[i])) };
}

export class Table extends Rendered {
  constructor(
    readonly columns: string[],
    readonly rows: string[][],
    bundle: { 'text/html': string; 'text/plain': string },
  ) {
    super(bundle);
  }
}

export function table(data: TableInput, opts: TableOptions = {}): Table {
  const digits = opts.digits ?? 4;
  const maxRows = opts.maxRows ?? 50;
  const { columns, rows: raw } = normalize(data, opts.columns);
  const rows = raw.map((r) => r.map((v) => formatCell(v, digits)));
  const shown = rows.slice(0, maxRows);
  const more = rows.length - shown.length;
  const numeric = columns.map((_, j) => raw.every((r) => r[j] === null || r[j] === undefined || typeof r[j] === 'number' || typeof r[j] === 'bigint'));

  // Plain text: columns padded to their widest cell, numbers right-aligned.
  const widths = columns.map((c, j) => Math.max(c.length, ...shown.map((r) => r[j]!.length)));
  const pad = (s: string, j: number): string => (numeric[j] ? s.padStart(widths[j]!) : s.padEnd(widths[j]!));
  const lines = [columns.map(pad).join('  '), widths.map((w) => '-'.repeat(w)).join('  '), ...shown.map((r) => r.map(pad).join('  ').trimEnd())];
  if (more > 0) lines.push(`… ${more} more rows`);
  if (opts.caption !== undefined) lines.unshift(opts.caption);

  const align = (j: number): string => (numeric[j] ? ' style="text-align:right"' : '');
  const head = columns.map((c, j) => `<th${align(j)}>${escapeHtml(c)}</th>`).join('');
  const body = shown.map((r) => `<tr>${r.map((c, j) => `<td${align(j)}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  const caption = opts.caption !== undefined ? `<caption>${escapeHtml(opts.caption)}</caption>` : '';
  const foot = more > 0 ? `<tfoot><tr><td colspan="${columns.length}">… ${more} more rows</td></tr></tfoot>` : '';
  const htmlTable = `<table class="clinilora-table">${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody>${foot}</table>`;
  return new Table(columns, rows, { 'text/html': htmlTable, 'text/plain': lines.join('\n') });
}

/**
 * Metrics as a table: one row per metric; one column per run/model for a nested mapping
 * ({adapter: {accuracy: 0.9}, base: {accuracy: 0.4}}), or a single `value` column for a flat one.
 */
export function metricsTable(metrics: Record<string, number> | Record<string, Record<string, number>>, opts: TableOptions = {}): Table {
  const entries = Object.entries(metrics);
  const nested = entries.length > 0 && entries.every(([, v]) => v !== null && typeof v === 'object');
  if (!nested) {
    return table(entries.map(([metric, value]) => ({ metric, value: value as number })), opts);
  }
  const groups = entries as [string, Record<string, number>][];
  const names: string[] = [];
  for (const [, m] of groups) for (const k of Object.keys(m)) if (!names.includes(k)) names.push(k);
  return table(
    names.map((metric) => ({ metric, ...Object.fromEntries(groups.map(([g, m]) => [g, m[metric]])) })),
    { ...opts, columns: ['metric', ...groups.map(([g]) => g)] },
  );
}
