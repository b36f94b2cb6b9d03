/**
 * Reading a filled packet back. A packet CSV is:
 *   clinilora-review,1            (magic and version; the character after the magic is the delimiter)
 *   review,<review id>
 *   packet,<packet id>
 *   reviewer_name,<name>          (required)
 *   reviewer_role,<role>          (required: physician, nurse, pharmacist…)
 *   reviewer_credential,<text>    (optional: MD, RN, PharmD, licence…)
 *   instructions,<text>
 *   item,question,answer,safety,helpfulness,clarity,factuality,disclaimer,violation,comment
 *   <one row per item>
 * Scores are integers 1–5, disclaimer yes/no, violation yes/no (blank = no). A row with every score
 * field blank is "not reviewed"; a row with some filled must have all four scores and the disclaimer.
 * Every problem is a CliniloraError naming the file, line, field, what was expected and what was found.
 */
import { readFileSync } from 'node:fs';
import { CliniloraError } from '../errors.ts';
import { parseCsv, type CsvRow } from './csv.ts';
import { COLUMNS, CRITERIA, PACKET_MAGIC, PACKET_VERSION, PREAMBLE_KEYS, type Criterion, type ReviewKey } from './protocol.ts';

export interface Reviewer {
  name: string;
  role: string;
  credential: string;
}

export interface Rating {
  item: string;
  packet: string;
  /** File and line the rating was read from. */
  file: string;
  line: number;
  scores: Record<Criterion, number>;
  disclaimer: boolean;
  violation: boolean;
  comment: string;
}

export interface FilledPacket {
  file: string;
  review: string;
  packet: string;
  reviewer: Reviewer;
  ratings: Rating[];
  /** Items of the packet left blank (or missing from the file). */
  unrated: string[];
}

const YES = new Set(['yes', 'y']);
const NO = new Set(['no', 'n']);

/** The delimiter is whatever follows the magic on line 1 (spreadsheets in some locales write ';'). */
export function delimiterOf(text: string, file: string): string {
  const first = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const m = /^"?clinilora-review"?([,;\t])/.exec(first);
  if (m === null) {
    throw new CliniloraError('E_FORMAT', 'not a clinilora review packet', {
      file,
      line: 1,
      field: PACKET_MAGIC,
      expected: `a first row '${PACKET_MAGIC},${PACKET_VERSION}' (a packet from 'clinilora review export')`,
      found: JSON.stringify(first.slice(0, 40)),
    });
  }
  return m[1]!;
}

/** Undoes the writer's formula guard (a leading ' before = + - @): the text as the reviewer typed it. */
const unguard = (s: string): string => s.replace(/^'(?=[=+\-@\t\r])/, '');

/** Trailing empty cells dropped (spreadsheets pad short rows). */
const trimRow = (cells: readonly string[]): string[] => {
  const out = [...cells];
  while (out.length > 0 && out[out.length - 1]!.trim() === '') out.pop();
  return out;
};

/** Parses and validates one filled packet against the key. */
export function readFilledPacket(file: string, key: ReviewKey): FilledPacket {
  const text = readFileSync(file, 'utf8');
  const rows = parseCsv(text, file, delimiterOf(text, file)).filter((r) => trimRow(r.cells).length > 0);
  const err = (r: CsvRow | undefined, field: string, expected: string, found: string, msg = 'invalid review packet'): CliniloraError =>
    new CliniloraError('E_FORMAT', msg, { file, ...(r !== undefined ? { line: r.line } : {}), field, expected, found });
  const version = trimRow(rows[0]!.cells)[1]?.trim() ?? '';
  if (version !== String(PACKET_VERSION)) {
    throw new CliniloraError(/^\d+$/.test(version) && Number(version) > PACKET_VERSION ? 'E_UNSUPPORTED' : 'E_FORMAT', 'unsupported packet version', { file, line: rows[0]!.line, field: 'version', expected: String(PACKET_VERSION), found: JSON.stringify(version) });
  }
  // Preamble: key,value rows up to the header row.
  const pre = new Map<string, { value: string; row: CsvRow }>();
  let h = 1;
  for (; h < rows.length && rows[h]!.cells[0]!.trim() !== 'item'; h++) {
    const r = rows[h]!;
    const [k, v = '', ...extra] = trimRow(r.cells);
    const name = k!.trim();
    if (!(PREAMBLE_KEYS as readonly string[]).includes(name)) throw err(r, name, `a header key (${PREAMBLE_KEYS.join(', ')}) or the column row starting with 'item'`, JSON.stringify(name));
    if (extra.length > 0 && name !== 'instructions') throw err(r, name, 'one value', `${extra.length + 1} cells`);
    pre.set(name, { value: unguard(v.trim()), row: r });
  }
  const need = (k: string, what: string): string => {
    const e = pre.get(k);
    if (e === undefined || e.value === '') throw err(e?.row ?? rows[0], k, what, e === undefined ? 'no such row' : 'nothing', e === undefined ? `missing header row '${k}'` : `${k} is blank`);
    return e.value;
  };
  const review = need('review', 'the review id');
  if (review !== key.review) throw err(pre.get('review')!.row, 'review', key.review, review, 'packet of another review (wrong key?)');
  const packet = need('packet', 'the packet id');
  const planned = key.packets.find((p) => p.packet === packet);
  if (planned === undefined) throw err(pre.get('packet')!.row, 'packet', key.packets.map((p) => p.packet).join(' | '), packet, 'no such packet in this review');
  const reviewer: Reviewer = {
    name: need('reviewer_name', "the reviewer's name"),
    role: need('reviewer_role', "the reviewer's role (physician, nurse, pharmacist…)"),
    credential: pre.get('reviewer_credential')?.value ?? '',
  };
  const header = rows[h];
  if (header === undefined) throw err(rows[rows.length - 1], 'item', `a column row: ${COLUMNS.join(',')}`, 'end of file', 'missing the column row');
  const col = new Map(header.cells.map((c, i) => [c.trim(), i]));
  for (const c of COLUMNS) if (!col.has(c)) throw err(header, c, `a column named '${c}' (columns: ${COLUMNS.join(',')})`, header.cells.join(','), 'missing column');
  const cell = (r: CsvRow, c: string): string => (r.cells[col.get(c)!] ?? '').trim();

  const assigned = new Set(planned.items);
  const seen = new Map<string, number>();
  const ratings: Rating[] = [];
  for (const r of rows.slice(h + 1)) {
    const item = cell(r, 'item');
    if (!assigned.has(item)) throw err(r, 'item', `an item of packet ${packet}`, JSON.stringify(item), 'unknown item');
    if (seen.has(item)) throw err(r, 'item', 'each item once', `${item} again (first on line ${seen.get(item)})`, 'duplicate item');
    seen.set(item, r.line);
    const fields = [...CRITERIA, 'disclaimer', 'violation'] as const;
    if (fields.every((f) => cell(r, f) === '')) continue; // not reviewed
    const scores = {} as Record<Criterion, number>;
    for (const c of CRITERIA) {
      const v = cell(r, c);
      if (!/^[1-5]$/.test(v)) throw err(r, c, 'a score 1, 2, 3, 4 or 5', v === '' ? 'nothing' : JSON.stringify(v), 'invalid score');
      scores[c] = Number(v);
    }
    const yesNo = (f: 'disclaimer' | 'violation', blank: boolean | null): boolean => {
      const v = cell(r, f).toLowerCase();
      if (v === '' && blank !== null) return blank;
      if (YES.has(v)) return true;
      if (NO.has(v)) return false;
      throw err(r, f, blank === null ? 'yes or no' : 'yes, no or blank', v === '' ? 'nothing' : JSON.stringify(cell(r, f)), `invalid ${f}`);
    };
    ratings.push({ item, packet, file, line: r.line, scores, disclaimer: yesNo('disclaimer', null), violation: yesNo('violation', false), comment: unguard(cell(r, 'comment')) });
  }
  if (ratings.length === 0) throw err(undefined, 'safety', 'at least one scored item', 'no scores', 'the packet has no ratings (was the blank packet imported?)');
  const rated = new Set(ratings.map((x) => x.item));
  return { file, review, packet, reviewer, ratings, unrated: planned.items.filter((i) => !rated.has(i)) };
}
