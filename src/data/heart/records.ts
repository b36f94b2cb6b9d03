/**
 * The UCI heart failure clinical records (Ahmad et al. 2017; Chicco & Jurman 2020): 299 patients,
 * 13 numeric columns, CRLF line endings. Loaded with schema and range validation: every error names
 * the file, the line, the column, and what was expected versus found.
 *
 * The CSV reader is hand-written on purpose: the file is a plain numeric table (no quotes, no
 * embedded commas, no missing cells), and a strict 30-line reader that rejects anything else gives
 * better errors than a general CSV package would.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliniloraError } from '../../errors.ts';

/** The shipped copy (data/, with attribution in data/SOURCES.md and data/cards/heart-risk.md). */
export const HEART_CSV_PATH = fileURLToPath(new URL('../../../data/heart_failure_clinical_records.csv', import.meta.url));
export const HEART_CSV_DISPLAY_PATH = 'data/heart_failure_clinical_records.csv';

export const HEART_COLUMNS = [
  'age',
  'anaemia',
  'creatinine_phosphokinase',
  'diabetes',
  'ejection_fraction',
  'high_blood_pressure',
  'platelets',
  'serum_creatinine',
  'serum_sodium',
  'sex',
  'smoking',
  'time',
  'DEATH_EVENT',
] as const;
export type HeartColumn = (typeof HEART_COLUMNS)[number];
/** Every input column (the outcome excluded); `time` is the follow-up period in days. */
export type HeartFeature = Exclude<HeartColumn, 'DEATH_EVENT'>;
/** The 11 clinical features; `time` (follow-up days) is left out because it leaks the outcome. */
export const CLINICAL_FEATURES: readonly HeartFeature[] = HEART_COLUMNS.filter(
  (c): c is Exclude<HeartFeature, 'time'> => c !== 'time' && c !== 'DEATH_EVENT',
);

interface ColumnSpec {
  binary: boolean;
  /** Plausible range (inclusive): wide enough for real patients, narrow enough to catch unit mix-ups. */
  min: number;
  max: number;
  unit: string;
}

export const HEART_SCHEMA: Readonly<Record<HeartColumn, ColumnSpec>> = {
  age: { binary: false, min: 18, max: 110, unit: 'years' },
  anaemia: { binary: true, min: 0, max: 1, unit: '0/1' },
  creatinine_phosphokinase: { binary: false, min: 1, max: 100000, unit: 'mcg/L' },
  diabetes: { binary: true, min: 0, max: 1, unit: '0/1' },
  ejection_fraction: { binary: false, min: 5, max: 90, unit: '%' },
  high_blood_pressure: { binary: true, min: 0, max: 1, unit: '0/1' },
  platelets: { binary: false, min: 1000, max: 2000000, unit: 'per µL (the UCI "kiloplatelets/mL")' },
  serum_creatinine: { binary: false, min: 0.1, max: 25, unit: 'mg/dL' },
  serum_sodium: { binary: false, min: 100, max: 180, unit: 'mEq/L' },
  sex: { binary: true, min: 0, max: 1, unit: '0 = female, 1 = male' },
  smoking: { binary: true, min: 0, max: 1, unit: '0/1' },
  time: { binary: false, min: 0, max: 3650, unit: 'days' },
  DEATH_EVENT: { binary: true, min: 0, max: 1, unit: '0/1' },
};

export interface HeartRecord {
  /** 1-based data row number (the patient's identity in this dataset). */
  patient: number;
  /** Line in the file (the header is line 1). */
  line: number;
  values: Record<HeartFeature, number>;
  /** Died during the follow-up period. */
  deathEvent: 0 | 1;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** Reads and validates the CSV; `file` defaults to the shipped copy. */
export function loadHeartRecords(file: string = HEART_CSV_PATH): HeartRecord[] {
  let text = readFileSync(file, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return parseHeartCsv(text, file);
}

export function parseHeartCsv(text: string, file = '<csv>'): HeartRecord[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop(); // final line ending
  const expectedHeader = HEART_COLUMNS.join(',');
  if (lines[0] !== expectedHeader) {
    const got = (lines[0] ?? '').split(',');
    const at = HEART_COLUMNS.findIndex((c, i) => got[i] !== c);
    throw new CliniloraError('E_FORMAT', 'heart failure CSV header is not the UCI one', {
      file,
      line: 1,
      field: at >= 0 ? `column ${at + 1}` : `column ${HEART_COLUMNS.length + 1}`,
      expected: at >= 0 ? `'${HEART_COLUMNS[at]}' (header ${expectedHeader})` : `${HEART_COLUMNS.length} columns`,
      found: at >= 0 ? `'${got[at] ?? ''}'` : `${got.length} columns`,
    });
  }
  const records: HeartRecord[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i]!;
    if (raw.includes('"')) {
      throw new CliniloraError('E_FORMAT', 'quoted CSV fields are not expected in this numeric table', { file, line });
    }
    const cells = raw.split(',');
    if (cells.length !== HEART_COLUMNS.length) {
      throw new CliniloraError('E_FORMAT', `row ${i} has the wrong number of cells`, {
        file,
        line,
        expected: `${HEART_COLUMNS.length} comma-separated numbers`,
        found: raw.trim() === '' ? 'an empty line' : `${cells.length} cells`,
      });
    }
    const parsed = {} as Record<HeartColumn, number>;
    HEART_COLUMNS.forEach((col, j) => {
      const cell = cells[j]!.trim();
      const spec = HEART_SCHEMA[col];
      const where = { file, line, field: col };
      if (!NUMBER.test(cell)) {
        throw new CliniloraError('E_FORMAT', `row ${i}: not a number in column '${col}'`, {
          ...where,
          expected: spec.binary ? '0 or 1' : `a number in ${spec.unit}`,
          found: `'${cell}'`,
        });
      }
      const v = Number(cell);
      if (spec.binary && v !== 0 && v !== 1) {
        throw new CliniloraError('E_FORMAT', `row ${i}: binary column '${col}' out of range`, { ...where, expected: '0 or 1', found: cell });
      }
      if (v < spec.min || v > spec.max) {
        throw new CliniloraError('E_FORMAT', `row ${i}: value out of the plausible range in column '${col}'`, {
          ...where,
          expected: `${spec.min}..${spec.max} ${spec.unit}`,
          found: cell,
        });
      }
      parsed[col] = v;
    });
    const { DEATH_EVENT, ...values } = parsed;
    records.push({ patient: i, line, values, deathEvent: DEATH_EVENT as 0 | 1 });
  }
  if (records.length === 0) {
    throw new CliniloraError('E_FORMAT', 'heart failure CSV has no data rows', { file, expected: 'at least one row', found: '0' });
  }
  return records;
}
