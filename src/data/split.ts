/**
 * Seeded, deterministic splits by source group, optionally stratified, and the leakage checks that
 * run on every build.
 */
import { CliniloraError } from '../errors.ts';
import { Rng } from '../util/random.ts';
import { contentKey, SPLIT_NAMES, type Sample, type SplitName } from './sample.ts';

/**
 * Split sizes: fractions summing to 1 (e.g. 0.9/0.05/0.05), or absolute counts of source groups
 * (e.g. 5000/250/250, AlpaCare-style demo; groups beyond the total are left out).
 */
export interface SplitRatios {
  train: number;
  validation: number;
  test: number;
}

export interface SplitOptions {
  seed: number;
  ratios: SplitRatios;
  /** Stratify by this key of a group's first sample (e.g. the outcome); default: no stratification. */
  stratify?: (s: Sample) => string;
}

export type Splits = Record<SplitName, Sample[]>;

export function splitSamples(samples: readonly Sample[], opts: SplitOptions): Splits {
  const { ratios } = opts;
  const values = SPLIT_NAMES.map((n) => ratios[n]);
  if (values.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new CliniloraError('E_CONFIG', 'split ratios must be finite and non-negative', {
      field: 'ratios',
      found: JSON.stringify(ratios),
    });
  }
  // Counts when any value is above 1, or when all are integers that do not sum to 1 ({1, 1, 1}).
  const sum = values.reduce((a, b) => a + b, 0);
  const asCounts = values.some((v) => v > 1) || (values.every((v) => Number.isInteger(v)) && sum > 1);
  if (!asCounts && Math.abs(sum - 1) > 1e-9) {
    throw new CliniloraError('E_CONFIG', 'split fractions must sum to 1', {
      field: 'ratios',
      expected: 'train + validation + test = 1 (or absolute counts)',
      found: JSON.stringify(ratios),
    });
  }

  // Group by source; order groups by key and a group's samples by ID, so the input order never matters.
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const g = groups.get(s.source);
    if (g) g.push(s);
    else groups.set(s.source, [s]);
  }
  for (const g of groups.values()) g.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const strata = new Map<string, string[]>();
  for (const key of [...groups.keys()].sort()) {
    const stratum = opts.stratify ? opts.stratify(groups.get(key)![0]!) : '';
    const list = strata.get(stratum);
    if (list) list.push(key);
    else strata.set(stratum, [key]);
  }

  const rng = new Rng(opts.seed).split('split');
  const totalGroups = groups.size;
  const chosen: Record<SplitName, string[]> = { train: [], validation: [], test: [] };
  for (const stratum of [...strata.keys()].sort()) {
    const keys = rng.shuffle(strata.get(stratum)!);
    const counts = allocate(keys.length, values, asCounts ? totalGroups : 0);
    let at = 0;
    SPLIT_NAMES.forEach((name, i) => {
      chosen[name].push(...keys.slice(at, at + counts[i]!));
      at += counts[i]!;
    });
  }
  // Mix the strata within each split (a group's samples stay together), so a split file is never
  // sorted by class: a prefix of it (an eval subset, `data show`) is representative.
  const out: Splits = { train: [], validation: [], test: [] };
  for (const name of SPLIT_NAMES) for (const key of rng.shuffle(chosen[name])) out[name].push(...groups.get(key)!);
  return out;
}

/**
 * How many of a stratum's `n` groups go to each split: fractions of n, or, for absolute counts, the
 * stratum's share of them (n / total groups; scaled down when fewer groups exist than asked for).
 * Rounded by largest remainder so the sizes add up.
 */
function allocate(n: number, values: number[], total: number): number[] {
  const sum = values.reduce((a, b) => a + b, 0);
  const want = total > 0 ? values.map((v) => (v * n) / Math.max(sum, total)) : values.map((v) => v * n);
  const base = want.map(Math.floor);
  let left = Math.round(want.reduce((a, b) => a + b, 0)) - base.reduce((a, b) => a + b, 0);
  const order = want.map((w, i) => [w - Math.floor(w), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    base[i]! += 1;
    left -= 1;
  }
  return base;
}

export interface LeakageReport {
  /** Same content (prompt + answer, whitespace/case-normalised) in two splits. */
  contentLeaks: Array<{ key: string; ids: string[]; splits: SplitName[] }>;
  /** The same source record in two splits. */
  sourceLeaks: Array<{ source: string; splits: SplitName[] }>;
}

export function findLeakage(splits: Splits): LeakageReport {
  const byContent = new Map<string, { ids: string[]; splits: Set<SplitName> }>();
  const bySource = new Map<string, Set<SplitName>>();
  for (const name of SPLIT_NAMES) {
    for (const s of splits[name]) {
      const k = contentKey(s);
      const c = byContent.get(k) ?? { ids: [], splits: new Set<SplitName>() };
      c.ids.push(s.id);
      c.splits.add(name);
      byContent.set(k, c);
      const src = bySource.get(s.source) ?? new Set<SplitName>();
      src.add(name);
      bySource.set(s.source, src);
    }
  }
  return {
    contentLeaks: [...byContent.entries()]
      .filter(([, v]) => v.splits.size > 1)
      .map(([key, v]) => ({ key, ids: v.ids, splits: [...v.splits] })),
    sourceLeaks: [...bySource.entries()].filter(([, v]) => v.size > 1).map(([source, v]) => ({ source, splits: [...v] })),
  };
}

/** Throws, loudly and with examples, when any sample or source record is in two splits. */
export function assertNoLeakage(splits: Splits, what: string): void {
  const r = findLeakage(splits);
  if (r.contentLeaks.length === 0 && r.sourceLeaks.length === 0) return;
  const parts: string[] = [];
  if (r.contentLeaks.length > 0) {
    const ex = r.contentLeaks.slice(0, 3).map((l) => `${l.ids.join('=')} in ${l.splits.join('+')}`);
    parts.push(`${r.contentLeaks.length} identical sample(s) across splits (e.g. ${ex.join('; ')})`);
  }
  if (r.sourceLeaks.length > 0) {
    const ex = r.sourceLeaks.slice(0, 3).map((l) => `${l.source} in ${l.splits.join('+')}`);
    parts.push(`${r.sourceLeaks.length} source record(s) in more than one split (e.g. ${ex.join('; ')})`);
  }
  throw new CliniloraError('E_FORMAT', `data leakage in ${what}: ${parts.join('; ')}`, {
    field: 'splits',
    hint: 'split by source record, and deduplicate content before splitting',
  });
}
