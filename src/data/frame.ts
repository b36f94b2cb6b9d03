/**
 * DataFrame views of a dataset for notebooks (danfojs-node): one row per sample, label × split
 * counts, describe() of token lengths, and a length histogram as plain data (for plots).
 *
 * danfojs-node is CommonJS and takes about a second to load, so it is imported on first use. The
 * plain-data helpers (`sampleRows`, `countLabels`, `summarizeLengths`, `lengthHistogram`) do not load
 * it; the CLI uses those.
 */
import type { DataFrame } from 'danfojs-node';
import { CliniloraError } from '../errors.ts';
import type { Phi3Tokenizer } from '../tokenizer/index.ts';
import { SPLIT_NAMES, type Sample, type SplitName } from './sample.ts';
import type { Splits } from './split.ts';
import { chatTokenCounts, phi3Tokenizer } from './tokens.ts';

export type { DataFrame };

/** One sample as a frame row. Token columns are present when a tokenizer was given. */
export interface SampleRow {
  id: string;
  split: SplitName;
  task: string;
  source: string;
  /** auditor: category; heart-risk: risk level; alpacare: corpus of origin; other: '(none)'. */
  label: string;
  /** Characters of system + user. */
  prompt_chars: number;
  answer_chars: number;
  /** Chat-formatted prompt tokens, up to and including `<|assistant|>` (see chatTokenCounts). */
  prompt_tokens?: number;
  answer_tokens?: number;
  total_tokens?: number;
}

export type LengthColumn = 'prompt_chars' | 'answer_chars' | 'prompt_tokens' | 'answer_tokens' | 'total_tokens';
export const TOKEN_COLUMNS = ['prompt_tokens', 'answer_tokens', 'total_tokens'] as const;
const BASE_COLUMNS = ['id', 'split', 'task', 'source', 'label', 'prompt_chars', 'answer_chars'] as const;

/** A frame from `samplesFrame`, or the splits themselves. */
export type FrameInput = DataFrame | Splits;

export interface FrameOptions {
  /** Tokenizer for the token columns. Frames: none by default; lengths: the shipped Phi-3 one. */
  tokenizer?: Phi3Tokenizer;
  /** Only this split's rows. */
  split?: SplitName;
}

/** The label a task's sample is counted under. */
export function sampleLabel(s: Sample): string {
  const key = s.task === 'auditor' ? 'category' : s.task === 'heart-risk' ? 'risk_level' : s.task === 'alpacare' ? 'origin' : undefined;
  const v = key !== undefined ? s.meta[key] : undefined;
  return typeof v === 'string' && v !== '' ? v : '(none)';
}

/** One plain row per sample, in split order (train, validation, test) and file order within a split. */
export function sampleRows(splits: Splits, opts: FrameOptions = {}): SampleRow[] {
  const rows: SampleRow[] = [];
  for (const split of SPLIT_NAMES) {
    if (opts.split !== undefined && split !== opts.split) continue;
    for (const s of splits[split]) {
      const row: SampleRow = {
        id: s.id,
        split,
        task: s.task,
        source: s.source,
        label: sampleLabel(s),
        prompt_chars: s.system.length + s.user.length,
        answer_chars: s.answer.length,
      };
      if (opts.tokenizer) {
        const t = chatTokenCounts(s, opts.tokenizer);
        row.prompt_tokens = t.prompt;
        row.answer_tokens = t.answer;
        row.total_tokens = t.total;
      }
      rows.push(row);
    }
  }
  return rows;
}

type Danfo = typeof import('danfojs-node');
let danfo: Promise<Danfo> | undefined;
function loadDanfo(): Promise<Danfo> {
  danfo ??= import('danfojs-node');
  return danfo;
}

/** A frame of one row per sample (columns as in SampleRow). */
export async function samplesFrame(splits: Splits, opts: FrameOptions = {}): Promise<DataFrame> {
  return rowsToFrame(sampleRows(splits, opts), opts.tokenizer !== undefined);
}

async function rowsToFrame(rows: readonly SampleRow[], tokens: boolean): Promise<DataFrame> {
  const dfd = await loadDanfo();
  const columns: string[] = [...BASE_COLUMNS, ...(tokens ? TOKEN_COLUMNS : [])];
  return objectFrame(dfd, columns, (c) => rows.map((r) => r[c as keyof SampleRow] ?? 0));
}

/** A frame from columns; danfojs cannot build an empty frame from an object of empty columns. */
function objectFrame(dfd: Danfo, columns: readonly string[], values: (column: string) => Array<string | number>): DataFrame {
  const data: Record<string, Array<string | number>> = {};
  for (const c of columns) data[c] = values(c);
  const n = columns.length > 0 ? data[columns[0]!]!.length : 0;
  return n === 0 ? new dfd.DataFrame([], { columns: [...columns] }) : new dfd.DataFrame(data, { columns: [...columns] });
}

function isSplits(x: FrameInput): x is Splits {
  const s = x as Partial<Splits>;
  return Array.isArray(s.train) && Array.isArray(s.validation) && Array.isArray(s.test);
}

function frameColumn(df: DataFrame, name: string): unknown[] {
  if (!df.columns.includes(name)) {
    const hint = (TOKEN_COLUMNS as readonly string[]).includes(name) ? 'build the frame with samplesFrame(splits, { tokenizer })' : undefined;
    throw new CliniloraError('E_ARG', `frame has no column '${name}'`, { field: name, expected: name, found: df.columns.join(', '), hint });
  }
  if (df.shape[0] === 0) return [];
  return [...(df.column(name).values as unknown[])];
}

/** Rows back from a frame (only the columns asked for need to exist). */
function frameRows(df: DataFrame, columns: readonly LengthColumn[]): SampleRow[] {
  const split = frameColumn(df, 'split');
  const label = df.columns.includes('label') ? frameColumn(df, 'label') : split.map(() => '(none)');
  const values = new Map(columns.map((c) => [c, frameColumn(df, c)] as const));
  return split.map((sp, i) => {
    if (!(SPLIT_NAMES as readonly unknown[]).includes(sp)) {
      throw new CliniloraError('E_ARG', 'frame has an unknown split', { field: `split[${i}]`, expected: SPLIT_NAMES.join(' | '), found: String(sp) });
    }
    const row: SampleRow = { id: '', split: sp as SplitName, task: '', source: '', label: String(label[i]), prompt_chars: 0, answer_chars: 0 };
    for (const [c, v] of values) row[c] = Number(v[i]);
    return row;
  });
}

/** Plain rows from either input; token columns are computed (shipped tokenizer by default) when needed. */
async function rowsOf(input: FrameInput, opts: FrameOptions, columns: readonly LengthColumn[]): Promise<SampleRow[]> {
  let rows: SampleRow[];
  if (isSplits(input)) {
    const needTokens = columns.some((c) => (TOKEN_COLUMNS as readonly string[]).includes(c));
    const tokenizer = opts.tokenizer ?? (needTokens ? await phi3Tokenizer() : undefined);
    rows = sampleRows(input, { tokenizer });
  } else {
    rows = frameRows(input, columns);
  }
  return opts.split !== undefined ? rows.filter((r) => r.split === opts.split) : rows;
}

export interface LabelCount {
  label: string;
  train: number;
  validation: number;
  test: number;
  total: number;
}

/** Label × split counts as plain data, labels sorted. */
export function countLabels(rows: readonly Pick<SampleRow, 'label' | 'split'>[]): LabelCount[] {
  const by = new Map<string, LabelCount>();
  for (const r of rows) {
    const c = by.get(r.label) ?? { label: r.label, train: 0, validation: 0, test: 0, total: 0 };
    c[r.split] += 1;
    c.total += 1;
    by.set(r.label, c);
  }
  return [...by.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

/** Label × split counts as a frame: columns label, train, validation, test, total. */
export async function labelCounts(input: FrameInput, opts: Pick<FrameOptions, 'split'> = {}): Promise<DataFrame> {
  const counts = countLabels(await rowsOf(input, opts, []));
  const dfd = await loadDanfo();
  const columns = ['label', 'train', 'validation', 'test', 'total'] as const;
  return objectFrame(dfd, columns, (c) => counts.map((x) => x[c as keyof LabelCount]));
}

/** danfojs describe() (count, mean, std, min, median, max, variance) of the token length columns. */
export async function describeLengths(input: FrameInput, opts: FrameOptions = {}): Promise<DataFrame> {
  const rows = await rowsOf(input, opts, TOKEN_COLUMNS);
  if (rows.length === 0) {
    throw new CliniloraError('E_ARG', 'no samples to describe', { field: opts.split !== undefined ? 'split' : 'input', found: opts.split ?? 'empty' });
  }
  const dfd = await loadDanfo();
  return objectFrame(dfd, TOKEN_COLUMNS, (c) => rows.map((r) => r[c as LengthColumn]!)).describe();
}

export interface LengthSummary {
  count: number;
  mean: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
}

/** Count, mean, min, median, 95th percentile (nearest rank) and max of a length column, as plain data. */
export function summarizeLengths(rows: readonly SampleRow[], column: LengthColumn): LengthSummary {
  const v = rows.map((r) => r[column]).filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return { count: 0, mean: Number.NaN, min: Number.NaN, p50: Number.NaN, p95: Number.NaN, max: Number.NaN };
  const rank = (p: number): number => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))]!;
  return { count: v.length, mean: v.reduce((a, b) => a + b, 0) / v.length, min: v[0]!, p50: rank(0.5), p95: rank(0.95), max: v[v.length - 1]! };
}

export interface LengthBin {
  /** [lo, hi); the last bin also holds hi. */
  lo: number;
  hi: number;
  count: number;
  train: number;
  validation: number;
  test: number;
}

export interface LengthHistogram {
  column: LengthColumn;
  bins: LengthBin[];
}

export interface HistogramOptions extends FrameOptions {
  /** Default 'total_tokens'. */
  column?: LengthColumn;
  /** Number of equal-width bins from min to max (default 20); ignored when binWidth is given. */
  bins?: number;
  /** Bin width; bins then start at a multiple of it (e.g. 64 tokens). */
  binWidth?: number;
}

/** The length distribution as plain bins with per-split counts (for plots and tables). */
export async function lengthHistogram(input: FrameInput, opts: HistogramOptions = {}): Promise<LengthHistogram> {
  const column = opts.column ?? 'total_tokens';
  const rows = await rowsOf(input, opts, [column]);
  return { column, bins: binRows(rows, column, opts) };
}

function binRows(rows: readonly SampleRow[], column: LengthColumn, opts: HistogramOptions): LengthBin[] {
  for (const [field, v] of [['bins', opts.bins], ['binWidth', opts.binWidth]] as const) {
    if (v !== undefined && !(v > 0 && (field === 'binWidth' || Number.isInteger(v)))) {
      throw new CliniloraError('E_ARG', `${field} must be positive`, { field, expected: field === 'bins' ? 'an integer >= 1' : '> 0', found: String(v) });
    }
  }
  const values = rows.map((r) => r[column] ?? Number.NaN);
  if (values.length === 0) return [];
  const min = Math.min(...values);
  const max = Math.max(...values);
  let lo0: number;
  let width: number;
  let n: number;
  if (opts.binWidth !== undefined) {
    width = opts.binWidth;
    lo0 = Math.floor(min / width) * width;
    n = Math.floor((max - lo0) / width) + 1;
  } else {
    n = opts.bins ?? 20;
    lo0 = min;
    width = max > min ? (max - min) / n : 1;
  }
  const bins: LengthBin[] = Array.from({ length: n }, (_, i) => ({ lo: lo0 + i * width, hi: lo0 + (i + 1) * width, count: 0, train: 0, validation: 0, test: 0 }));
  rows.forEach((r, i) => {
    const b = bins[Math.min(n - 1, Math.floor((values[i]! - lo0) / width))]!;
    b.count += 1;
    b[r.split] += 1;
  });
  return bins;
}
