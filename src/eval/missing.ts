/**
 * Missing-item detection (heart-risk on incomplete inputs): the items an answer names as missing
 * against the items actually withheld. Counts are pooled over all rows (micro-averaged):
 * TP = named and missing, FP = named but given, FN = missing but not named. With nothing named,
 * precision is 1 (nothing was named wrongly); with nothing missing, recall is 1; F1 is their harmonic
 * mean (0 when both are 0). Case and surrounding space of item names are ignored.
 */
export interface MissingItemScores {
  precision: number;
  recall: number;
  f1: number;
  tp: number;
  fp: number;
  fn: number;
  /** Rows whose named set equals the true set exactly. */
  exactMatchRate: number;
  rows: number;
}

const norm = (s: string): string => s.trim().toLowerCase();

export function missingItemScores(rows: ReadonlyArray<{ missingTrue: readonly string[]; missingNamed: readonly string[] }>): MissingItemScores {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let exact = 0;
  for (const r of rows) {
    const truth = new Set(r.missingTrue.map(norm));
    const named = new Set(r.missingNamed.map(norm));
    let rowTp = 0;
    for (const x of named) if (truth.has(x)) rowTp++;
    tp += rowTp;
    fp += named.size - rowTp;
    fn += truth.size - rowTp;
    if (rowTp === truth.size && rowTp === named.size) exact++;
  }
  const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1, tp, fp, fn, exactMatchRate: rows.length === 0 ? NaN : exact / rows.length, rows: rows.length };
}
