/**
 * CSV in and out through papaparse (already installed with danfojs-node; a well-kept RFC 4180 parser
 * that handles quoted fields with commas, quotes and newlines, which model answers contain).
 * It ships no types: the two calls used are typed here, and it is loaded with createRequire.
 *
 * Written: every field quoted, CRLF between rows (what spreadsheets expect), and a field starting with
 * = + - @ tab or CR prefixed with ' so a spreadsheet never runs model text as a formula (papaparse's
 * own escapeFormulae regex misses multi-line fields, hence ours). The HTML form (form.ts) writes the
 * same bytes with the same rules.
 */
import { createRequire } from 'node:module';
import { CliniloraError } from '../errors.ts';

interface PapaError {
  code: string;
  message: string;
  /** Character offset in the input, when known. */
  index?: number;
}
interface PapaStep {
  data: string[];
  errors: PapaError[];
  meta: { cursor: number };
}
interface Papa {
  parse(input: string, config: { delimiter: string; newline: string; step: (r: PapaStep) => void }): void;
  unparse(rows: string[][], config: { quotes: boolean; escapeFormulae: RegExp; newline: string }): string;
}

let papa: Papa | undefined;
function load(): Papa {
  if (papa !== undefined) return papa;
  try {
    papa = createRequire(import.meta.url)('papaparse') as Papa;
  } catch {
    throw new CliniloraError('E_MISSING', 'papaparse is not installed', { hint: 'npm install papaparse@5.7.1' });
  }
  return papa;
}

/** Fields that a spreadsheet would read as a formula. */
export const FORMULA_START = /^[=+\-@\t\r]/;

/** Rows → CSV text (all fields quoted, CRLF, a final CRLF). */
export function toCsv(rows: readonly (readonly string[])[]): string {
  return `${load().unparse(rows.map((r) => [...r]), { quotes: true, escapeFormulae: FORMULA_START, newline: '\r\n' })}\r\n`;
}

export interface CsvRow {
  /** 1-based line where the row starts. */
  line: number;
  cells: string[];
}

/**
 * Parses CSV text. The delimiter is `delimiter` (a spreadsheet in some locales saves ';'); line
 * endings are normalised to LF first (an editor may mix them). A malformed quote is an error naming
 * the file and line.
 */
export function parseCsv(text: string, file: string, delimiter = ','): CsvRow[] {
  const src = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const lineAt = lineIndex(src);
  const rows: CsvRow[] = [];
  let start = 0;
  load().parse(src, {
    delimiter,
    newline: '\n',
    step: (r) => {
      const e = r.errors[0];
      if (e !== undefined) {
        throw new CliniloraError('E_FORMAT', `malformed CSV: ${e.message}`, {
          file,
          line: lineAt(e.index ?? start),
          expected: 'RFC 4180 CSV (a quoted field ends with a quote; a quote inside one is doubled)',
          found: e.code,
        });
      }
      rows.push({ line: lineAt(start), cells: r.data });
      start = r.meta.cursor;
    },
  });
  return rows;
}

/** offset → 1-based line number (binary search over newline offsets). */
function lineIndex(text: string): (offset: number) => number {
  const nl: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) nl.push(i);
  return (offset) => {
    let lo = 0;
    let hi = nl.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (nl[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}
