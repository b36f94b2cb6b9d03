/**
 * Comparing a re-run with the run it reproduces (`clinilora reproduce`): sample IDs, the loss curve
 * step by step (loss, lr, grad norm, epoch), every evaluation and the final metrics, exactly on the
 * same backend or within a stated tolerance across backends. Timings (ms, tokens/s) are never
 * compared: they measure the machine, not the run. The result says where the two first differ and
 * what differs in their setup (config keys, data, commit, environment) that could explain it.
 */
import type { SplitManifest } from '../data/manifest.ts';
import { formatNumber, showValue, type RunDiff } from './compare.ts';
import { stepSeries, type Difference, type EvalEntry, type ReproductionInfo, type RunRecord } from './schema.ts';

export interface Tolerance {
  /** Relative tolerance: |a − b| <= atol + rtol·|a|. */
  rtol: number;
  atol: number;
}

/**
 * Across backends (cpu vs wasm vs tensorflow) float32 sums run in another order. Measured on a tiny
 * auditor run (3 steps): cpu vs wasm losses differ by ~3e-7 relative; 1e-3 leaves room for longer
 * runs, where differences grow with the steps.
 */
export const CROSS_BACKEND_TOLERANCE: Tolerance = { rtol: 1e-3, atol: 1e-6 };

/** At most this many differences are kept in the verdict (all are counted). */
export const MAX_DIFFERENCES = 20;

/** Keys that measure time or speed: `ms`, `*_ms`, `*_per_sec`, `tokensPerSec`, `time`. */
export function isTimingKey(key: string): boolean {
  return /(^|_)ms$|_per_sec$|PerSec$|^time$/.test(key);
}

/** Step fields compared (tokensPerSec and ms are timings). */
const STEP_KEYS = ['loss', 'lr', 'gradNorm', 'epoch'] as const;

export interface Comparison {
  differences: Difference[];
  compared: ReproductionInfo['compared'];
  notes: string[];
}

function close(a: number, b: number, tol: Tolerance | null): boolean {
  if (tol === null) return Object.is(a, b) || a === b;
  return Math.abs(a - b) <= tol.atol + tol.rtol * Math.abs(a);
}

/** null/absent on both sides: equal; on one side: different; numbers: exact or within tolerance. */
function sameValue(a: number | null, b: number | null, tol: Tolerance | null): boolean {
  if (a === null || b === null) return a === b;
  return close(a, b, tol);
}

/**
 * Sample IDs split by split, in order. The first differing position per split is one difference;
 * a split present on one side only is one difference too.
 */
export function compareManifests(a: SplitManifest, b: SplitManifest): { differences: Difference[]; samples: number } {
  const out: Difference[] = [];
  let samples = 0;
  const sa = a.splits as Record<string, string[]>;
  const sb = b.splits as Record<string, string[]>;
  for (const split of [...new Set([...Object.keys(sa), ...Object.keys(sb)])]) {
    const ia = sa[split] ?? [];
    const ib = sb[split] ?? [];
    samples += Math.max(ia.length, ib.length);
    const n = Math.max(ia.length, ib.length);
    for (let i = 0; i < n; i++) {
      if (ia[i] !== ib[i]) {
        out.push({ where: 'data', step: null, key: `samples.${split}[${i}]`, a: ia[i] ?? null, b: ib[i] ?? null });
        break;
      }
    }
  }
  return { differences: out, samples };
}

/** Evaluations keyed by step, split and occurrence (a step evaluated twice after a resume keeps both). */
function evalKey(e: EvalEntry, seen: Map<string, number>): string {
  const base = `${e.step ?? 'none'}|${e.split}`;
  const n = seen.get(base) ?? 0;
  seen.set(base, n + 1);
  return `${base}|${n}`;
}

/**
 * Compares the re-run `b` with the original `a`. `tol` null means exact (bit-identical floats).
 * Manifests, when both are given, compare the sample IDs. Differences come out in the order they
 * happened: data, then by step (steps before evaluations of the same step), then final metrics and
 * status.
 */
export function compareRecords(a: RunRecord, b: RunRecord, tol: Tolerance | null, manifests?: { a: SplitManifest | null; b: SplitManifest | null }): Comparison {
  const diffs: Difference[] = [];
  const notes: string[] = [];
  const compared = { samples: 0, steps: 0, evals: 0, metrics: 0 };
  if (manifests !== undefined) {
    if (manifests.a !== null && manifests.b !== null) {
      const m = compareManifests(manifests.a, manifests.b);
      diffs.push(...m.differences);
      compared.samples = m.samples;
    } else notes.push(`sample IDs not compared: the ${manifests.a === null ? 'original' : 're-run'} has no readable split manifest`);
  }

  const stepsA = new Map(stepSeries(a).map((s) => [s.step, s]));
  const stepsB = new Map(stepSeries(b).map((s) => [s.step, s]));
  const skipped = new Set<string>();
  const timeline: Difference[] = [];
  for (const step of [...new Set([...stepsA.keys(), ...stepsB.keys()])].sort((x, y) => x - y)) {
    const x = stepsA.get(step);
    const y = stepsB.get(step);
    if (x === undefined || y === undefined) {
      timeline.push({ where: 'step', step, key: 'logged', a: x === undefined ? null : 'yes', b: y === undefined ? null : 'yes' });
      continue;
    }
    compared.steps++;
    for (const k of STEP_KEYS) {
      const va = x[k];
      const vb = y[k];
      // A field one side never logs (an older version) is not a numeric difference: say so once.
      if (va === undefined || vb === undefined) {
        if (va !== vb) skipped.add(k);
        continue;
      }
      if (!sameValue(va, vb, tol)) timeline.push({ where: 'step', step, key: k, a: va, b: vb });
    }
  }
  for (const k of skipped) notes.push(`step field '${k}' is logged by one run only: not compared`);

  const seenA = new Map<string, number>();
  const seenB = new Map<string, number>();
  const evalsA = new Map(a.evals.map((e) => [evalKey(e, seenA), e]));
  const evalsB = new Map(b.evals.map((e) => [evalKey(e, seenB), e]));
  for (const key of [...new Set([...evalsA.keys(), ...evalsB.keys()])]) {
    const x = evalsA.get(key);
    const y = evalsB.get(key);
    const ref = (x ?? y)!;
    if (x === undefined || y === undefined) {
      timeline.push({ where: 'eval', step: ref.step, split: ref.split, key: 'evaluated', a: x === undefined ? null : 'yes', b: y === undefined ? null : 'yes' });
      continue;
    }
    compared.evals++;
    for (const k of [...new Set([...Object.keys(x.metrics), ...Object.keys(y.metrics)])].sort()) {
      if (isTimingKey(k)) continue;
      const va = x.metrics[k] ?? null;
      const vb = y.metrics[k] ?? null;
      if (!sameValue(va, vb, tol)) timeline.push({ where: 'eval', step: x.step, split: x.split, key: k, a: va, b: vb });
    }
  }
  // Steps before evaluations of the same step; a standalone evaluation (step null) after all steps.
  const order = (d: Difference): number => (d.step ?? Number.MAX_SAFE_INTEGER) * 2 + (d.where === 'eval' ? 1 : 0);
  diffs.push(...timeline.map((d, i) => ({ d, i })).sort((p, q) => order(p.d) - order(q.d) || p.i - q.i).map((p) => p.d));

  const ma = a.metrics ?? {};
  const mb = b.metrics ?? {};
  for (const k of [...new Set([...Object.keys(ma), ...Object.keys(mb)])].sort()) {
    if (isTimingKey(k)) continue;
    compared.metrics++;
    const va = ma[k] ?? null;
    const vb = mb[k] ?? null;
    if (!sameValue(va, vb, tol)) diffs.push({ where: 'metric', step: null, key: k, a: va, b: vb });
  }
  if (a.status !== b.status) diffs.push({ where: 'status', step: null, key: 'status', a: a.status, b: b.status });
  return { differences: diffs, compared, notes };
}

/** Config keys that never change what is computed (the re-run's outDir is its own directory). */
const NEUTRAL_CONFIG_KEYS = new Set(['outDir', 'training.logEvery']);

/**
 * The setup differences between the original and the re-run, one line each ("config seed: 42 → 43",
 * "git commit: 1a2b → 3c4d", "environment backend.name: wasm → cpu"): the candidates that explain a
 * difference in results. Record-level bookkeeping (ids, names, status, tags, timings) is left out.
 */
export function setupChanges(d: RunDiff): string[] {
  const line = (section: string, key: string, a: unknown, b: unknown): string => `${section} ${key}: ${showValue(a)} → ${showValue(b)}`;
  const out: string[] = [];
  for (const c of d.config) if (!NEUTRAL_CONFIG_KEYS.has(c.key)) out.push(line('config', c.key, c.a, c.b));
  // The record's seed is the config's: only a seed given apart from the config (openRun's opts.seed) is news.
  for (const c of d.run) if (c.key === 'seed' && !d.config.some((x) => x.key === 'seed')) out.push(line('run', c.key, c.a, c.b));
  for (const c of d.data.changes) if (c.key !== 'dir') out.push(line('data', c.key, c.a, c.b));
  for (const s of d.data.samples) out.push(`data samples.${s.split}: ${s.onlyA} only in the original, ${s.onlyB} only in the re-run`);
  for (const c of d.git) if (['commit', 'patchSha256', 'untracked'].includes(c.key) || c.key.startsWith('untracked')) out.push(line('git', c.key, c.a, c.b));
  for (const c of d.env) if (c.key !== 'host') out.push(line('environment', c.key, c.a, c.b));
  return out;
}

/** "step 3 loss", "eval validation@2 accuracy", "metric accuracy", "samples.train[4]". */
export function describeWhere(d: Difference): string {
  if (d.where === 'step') return `step ${d.step} ${d.key}`;
  if (d.where === 'eval') return `evaluation ${d.split ?? '?'}${d.step !== null ? ` at step ${d.step}` : ''}: ${d.key}`;
  if (d.where === 'metric') return `final metric ${d.key}`;
  if (d.where === 'data') return `sample ID ${d.key}`;
  return d.key;
}

/** Full precision: a difference in the 7th digit is the point of an exact comparison. */
function showDiffValue(v: number | string | null): string {
  return v === null ? '(absent)' : String(v);
}

/** One line for a difference: where, both values and (numbers) the gap. */
export function formatDifference(d: Difference): string {
  const gap = typeof d.a === 'number' && typeof d.b === 'number' ? ` (b − a = ${formatNumber(d.b - d.a)})` : '';
  return `${describeWhere(d)}: recorded ${showDiffValue(d.a)}, re-run ${showDiffValue(d.b)}${gap}`;
}

/** The verdict as text for the terminal. */
export function formatVerdict(v: ReproductionInfo): string {
  const lines: string[] = [];
  const how = v.mode === 'exact' ? 'exactly (same backend: bit-identical values)' : `within rtol ${v.tolerance?.rtol} + atol ${v.tolerance?.atol} (another backend)`;
  lines.push(v.reproduced ? `REPRODUCED ${how}` : `NOT REPRODUCED (compared ${v.mode === 'exact' ? 'exactly' : `within rtol ${v.tolerance?.rtol} + atol ${v.tolerance?.atol}`})`);
  lines.push(`original ${v.of}, re-run ${v.rerun ?? '(none)'}, code from the ${v.source === 'checkout' ? 'recorded commit (temporary worktree)' : 'working tree'}`);
  const c = v.compared;
  lines.push(`compared: ${c.samples} sample IDs, ${c.steps} steps, ${c.evals} evaluations, ${c.metrics} final metrics (timings excluded)`);
  if (v.firstDifference !== null) {
    lines.push('', `first difference: ${formatDifference(v.firstDifference)}`);
    const rest = v.differences.slice(1);
    if (rest.length > 0) {
      lines.push(`then (${v.differenceCount - 1} more${v.differenceCount > v.differences.length ? `, first ${rest.length} shown` : ''}):`);
      for (const d of rest) lines.push(`  ${formatDifference(d)}`);
    }
  }
  if (v.setup.length > 0) {
    lines.push('', v.reproduced ? 'setup differences (they did not change the results):' : 'setup differences that can explain it:');
    for (const s of v.setup) lines.push(`  ${s}`);
  } else if (!v.reproduced) {
    lines.push('', 'no setup difference recorded: same config, data, commit and environment (nondeterminism in the code?)');
  }
  for (const n of v.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}
