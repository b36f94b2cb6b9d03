/**
 * The clinical-model audit report: its keys, their ranges, and `validateReport`, which turns any
 * JSON value (generator output, or a user's report given to the CLI) into a checked `AuditReport` or
 * throws a CliniloraError naming the key, the expected range and the value found.
 */
import { CliniloraError } from '../../errors.ts';

/** The twelve keys every report has, in the order a report prints them. */
export const REQUIRED_KEYS = [
  'auc',
  'accuracy',
  'precision',
  'recall',
  'f1',
  'ece',
  'brier',
  'drift',
  'missing_rate',
  'label_shift',
  'pos_rate',
  'data_integrity_issues',
] as const;

/** Keys a report may have: the training-set AUC and the train − eval AUC gap. */
export const OPTIONAL_KEYS = ['train_auc', 'train_eval_gap'] as const;

export type RequiredKey = (typeof REQUIRED_KEYS)[number];
export type OptionalKey = (typeof OPTIONAL_KEYS)[number];
export type ReportKey = RequiredKey | OptionalKey;

export type AuditReport = { [K in RequiredKey]: number } & { [K in OptionalKey]?: number };

export interface KeyRange {
  min: number;
  max: number;
  integer: boolean;
  /** What the value means, for the data card and error hints. */
  meaning: string;
}

/** Valid range of every key (inclusive). */
export const KEY_RANGES: Record<ReportKey, KeyRange> = {
  auc: { min: 0, max: 1, integer: false, meaning: 'ROC AUC on the evaluation (deployment) data' },
  accuracy: { min: 0, max: 1, integer: false, meaning: 'accuracy at the operating threshold' },
  precision: { min: 0, max: 1, integer: false, meaning: 'positive predictive value at the operating threshold' },
  recall: { min: 0, max: 1, integer: false, meaning: 'sensitivity at the operating threshold' },
  f1: { min: 0, max: 1, integer: false, meaning: 'harmonic mean of precision and recall' },
  ece: { min: 0, max: 1, integer: false, meaning: 'expected calibration error (binned |predicted − observed|)' },
  brier: { min: 0, max: 1, integer: false, meaning: 'Brier score, mean squared error of the predicted probability' },
  drift: { min: 0, max: Number.POSITIVE_INFINITY, integer: false, meaning: 'population stability index (PSI) of the inputs against the training data' },
  missing_rate: { min: 0, max: 1, integer: false, meaning: 'share of missing feature values' },
  label_shift: { min: 0, max: 1, integer: false, meaning: 'absolute change of the positive rate against the training data' },
  pos_rate: { min: 0, max: 1, integer: false, meaning: 'positive (outcome) rate in the evaluation data' },
  data_integrity_issues: { min: 0, max: Number.POSITIVE_INFINITY, integer: true, meaning: 'count of failed data-quality checks (schema, ranges, duplicates, units)' },
  train_auc: { min: 0, max: 1, integer: false, meaning: 'ROC AUC on the training data' },
  train_eval_gap: { min: -1, max: 1, integer: false, meaning: 'train_auc − auc' },
};

/** Largest |train_eval_gap − (train_auc − auc)| accepted: three values each rounded to 3 decimals. */
export const GAP_TOLERANCE = 0.0015;

export interface ValidateOptions {
  /** File the report came from, for the error message. */
  file?: string;
  /** 1-based line (JSONL), for the error message. */
  line?: number;
  /** Accept keys that are not report keys (they are dropped); default false: an unknown key is an error. */
  allowExtra?: boolean;
}

function describeRange(r: KeyRange): string {
  const hi = Number.isFinite(r.max) ? String(r.max) : '∞';
  return r.integer ? `an integer >= ${r.min}` : `a number in [${r.min}, ${hi}]`;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing (key missing)';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return String(v);
  return `${v === null ? 'null' : typeof v} ${JSON.stringify(v)}`;
}

/**
 * Checks `value` is a report: an object with all twelve required keys, optional `train_auc` and
 * `train_eval_gap`, every value a finite number in its range (`data_integrity_issues` an integer), and
 * `train_eval_gap` equal to `train_auc − auc` within rounding when both are given. Returns a new object
 * with the keys in report order.
 */
export function validateReport(value: unknown, opts: ValidateOptions = {}): AuditReport {
  const where = { file: opts.file, line: opts.line };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliniloraError('E_FORMAT', 'an audit report must be a JSON object', {
      ...where,
      expected: `an object with keys ${REQUIRED_KEYS.join(', ')}`,
      found: show(value),
    });
  }
  const obj = value as Record<string, unknown>;
  const known = new Set<string>([...REQUIRED_KEYS, ...OPTIONAL_KEYS]);
  if (!opts.allowExtra) {
    const extra = Object.keys(obj).filter((k) => !known.has(k));
    if (extra.length > 0) {
      throw new CliniloraError('E_FORMAT', `unknown report key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')}`, {
        ...where,
        field: extra[0],
        expected: `only ${[...REQUIRED_KEYS, ...OPTIONAL_KEYS].join(', ')}`,
        found: extra.join(', '),
        hint: 'check the spelling of the key, or pass allowExtra to ignore extra keys',
      });
    }
  }
  const out: Record<string, number> = {};
  const keys: ReportKey[] = [...REQUIRED_KEYS, ...OPTIONAL_KEYS];
  for (const key of keys) {
    const v = obj[key];
    const range = KEY_RANGES[key];
    const optional = (OPTIONAL_KEYS as readonly string[]).includes(key);
    if (v === undefined && optional) continue;
    if (v === undefined) {
      throw new CliniloraError('E_FORMAT', `report is missing the key '${key}'`, {
        ...where,
        field: key,
        expected: describeRange(range),
        found: show(v),
        hint: `every report needs ${REQUIRED_KEYS.join(', ')}`,
      });
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new CliniloraError('E_FORMAT', `report key '${key}' is not a finite number`, { ...where, field: key, expected: describeRange(range), found: show(v) });
    }
    if (v < range.min || v > range.max || (range.integer && !Number.isInteger(v))) {
      throw new CliniloraError('E_FORMAT', `report key '${key}' is out of range`, {
        ...where,
        field: key,
        expected: describeRange(range),
        found: String(v),
        hint: range.integer ? undefined : `'${key}' is ${range.meaning}; rates are fractions, not percentages`,
      });
    }
    out[key] = v;
  }
  if (out.train_auc !== undefined && out.train_eval_gap !== undefined) {
    const want = out.train_auc - out.auc!;
    if (Math.abs(out.train_eval_gap - want) > GAP_TOLERANCE + 1e-9) {
      throw new CliniloraError('E_FORMAT', "report key 'train_eval_gap' does not equal train_auc − auc", {
        ...where,
        field: 'train_eval_gap',
        expected: `${want.toFixed(3)} (train_auc ${out.train_auc} − auc ${out.auc}, ±${GAP_TOLERANCE})`,
        found: String(out.train_eval_gap),
      });
    }
  }
  return out as AuditReport;
}
