/**
 * Inter-rater agreement: Krippendorff's alpha, chosen over weighted Cohen's kappa because our review
 * design gives each item 2+ reviewers out of N, overlapping (not every pair rates the same items),
 * and reviewers may leave items unrated: alpha handles any number of raters and missing values;
 * kappa needs the same two raters on every item.
 *
 * Following K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011):
 *   - units u with m_u >= 2 values are pairable (a unit with one value says nothing about agreement);
 *   - coincidences o_ck = Σ_u (number of ordered c–k value pairs in u) / (m_u − 1);
 *   - n_c = Σ_k o_ck (value totals), n = Σ_c n_c (pairable values);
 *   - alpha = 1 − D_o / D_e = 1 − (n − 1) · Σ_{c,k} o_ck δ²_ck / Σ_{c,k} n_c n_k δ²_ck.
 * Metrics δ²_ck: nominal [c ≠ k]; interval (c − k)²; ordinal (Σ_{g=c..k} n_g − (n_c + n_k)/2)², with
 * the sum over the ranks between c and k inclusive (the metric depends on how values are used, which
 * is why Likert scores take the ordinal one).
 */

export type AlphaMetric = 'nominal' | 'ordinal' | 'interval';

export interface AlphaResult {
  /** NaN when undefined: fewer than 2 pairable values, or no variation at all (D_e = 0). */
  alpha: number;
  /** Units with 2+ values (the ones that count). */
  units: number;
  /** Pairable values n. */
  values: number;
  observedDisagreement: number;
  expectedDisagreement: number;
}

/**
 * Krippendorff's alpha over `units`: one array of values per unit (item), missing ratings left out
 * (or given as null). Values are numbers (Likert scores, or 0/1 for yes/no with 'nominal').
 */
export function krippendorffAlpha(units: ReadonlyArray<ReadonlyArray<number | null>>, metric: AlphaMetric): AlphaResult {
  const pairable = units.map((u) => u.filter((v): v is number => v !== null && Number.isFinite(v))).filter((u) => u.length >= 2);
  const levels = [...new Set(pairable.flat())].sort((a, b) => a - b);
  const index = new Map(levels.map((v, i) => [v, i]));
  const L = levels.length;
  // o[c][k]: the coincidence matrix, [L, L].
  const o = Array.from({ length: L }, () => new Float64Array(L));
  for (const u of pairable) {
    const w = 1 / (u.length - 1);
    for (let i = 0; i < u.length; i++) {
      for (let j = 0; j < u.length; j++) {
        if (i !== j) o[index.get(u[i]!)!]![index.get(u[j]!)!]! += w;
      }
    }
  }
  const nc = o.map((row) => row.reduce((a, b) => a + b, 0));
  const n = nc.reduce((a, b) => a + b, 0);
  const d2 = distance(metric, levels, nc);
  let num = 0;
  let den = 0;
  for (let c = 0; c < L; c++) {
    for (let k = 0; k < L; k++) {
      num += o[c]![k]! * d2(c, k);
      den += nc[c]! * nc[k]! * d2(c, k);
    }
  }
  const Do = n > 0 ? num / n : NaN;
  const De = n > 1 ? den / (n * (n - 1)) : NaN;
  const alpha = n < 2 || !(De > 0) ? NaN : 1 - Do / De;
  return { alpha, units: pairable.length, values: n, observedDisagreement: Do, expectedDisagreement: De };
}

/** δ²(c, k) between the c-th and k-th distinct value (sorted ascending). */
function distance(metric: AlphaMetric, levels: readonly number[], nc: readonly number[]): (c: number, k: number) => number {
  switch (metric) {
    case 'nominal':
      return (c, k) => (c === k ? 0 : 1);
    case 'interval':
      return (c, k) => (levels[c]! - levels[k]!) ** 2;
    case 'ordinal': {
      // cum[i] = n_0 + … + n_{i-1}; Σ_{g=c..k} n_g = cum[k+1] − cum[c] for c <= k.
      const cum = [0];
      for (const x of nc) cum.push(cum[cum.length - 1]! + x);
      return (c, k) => {
        const [lo, hi] = c <= k ? [c, k] : [k, c];
        return (cum[hi + 1]! - cum[lo]! - (nc[lo]! + nc[hi]!) / 2) ** 2;
      };
    }
  }
}
