/**
 * Review packets in a notebook: read an exported packet (its items as a reviewer sees them) and fill
 * one programmatically, for demonstrating `review import` end to end without people. The filled file
 * is the exported CSV with the reviewer rows and score cells set, written as the exporter writes CSV,
 * so `importReview` reads it exactly as it reads a packet filled in a spreadsheet or the HTML form.
 * Scores filled this way are not a human review: callers must say so (reviewer name and role).
 */
import { readFileSync } from 'node:fs';
import { CliniloraError } from '../errors.ts';
import { parseCsv, toCsv } from '../review/csv.ts';
import { CRITERIA, type Criterion } from '../review/protocol.ts';
import { delimiterOf } from '../review/scores.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** One item of a packet, as the reviewer sees it. */
export interface PacketItem {
  item: string;
  question: string;
  answer: string;
}

export interface PacketView {
  file: string;
  review: string;
  packet: string;
  instructions: string;
  items: PacketItem[];
}

/** One reviewer's entry for an item: scores 1–5, disclaimer and violation yes/no. */
export type PacketRating = Record<Criterion, number> & { disclaimer: boolean; violation: boolean; comment?: string };

export interface FillPacketOptions {
  /** Where the filled packet goes (the exported file is left blank). */
  out: string;
  reviewer: { name: string; role: string; credential?: string };
  /** The rating of each item (null leaves the row blank: not reviewed). */
  rate: (item: PacketItem, index: number) => PacketRating | null;
}

interface ParsedPacket {
  rows: string[][];
  header: number;
  col: Map<string, number>;
  view: PacketView;
}

function parsePacket(file: string): ParsedPacket {
  const text = readFileSync(file, 'utf8');
  const rows = parseCsv(text, file, delimiterOf(text, file)).map((r) => r.cells);
  const header = rows.findIndex((r) => r[0]?.trim() === 'item');
  if (header < 0) throw new CliniloraError('E_FORMAT', 'the packet has no column row', { file, field: 'item', expected: "a row starting with 'item'" });
  const pre = new Map(rows.slice(1, header).map((r) => [r[0]!.trim(), r[1] ?? '']));
  const col = new Map(rows[header]!.map((c, i) => [c.trim(), i]));
  for (const c of ['item', 'question', 'answer', ...CRITERIA, 'disclaimer', 'violation', 'comment']) {
    if (!col.has(c)) throw new CliniloraError('E_FORMAT', 'missing column', { file, field: c, found: rows[header]!.join(',') });
  }
  const body = rows.slice(header + 1).filter((r) => r.some((c) => c.trim() !== ''));
  const at = (r: string[], c: string): string => r[col.get(c)!] ?? '';
  // The exporter's formula guard (a leading ' before = + - @) is not part of the text shown.
  const shown = (s: string): string => s.replace(/^'(?=[=+\-@\t\r])/, '');
  return {
    rows: [...rows.slice(0, header + 1), ...body],
    header,
    col,
    view: {
      file,
      review: pre.get('review') ?? '',
      packet: pre.get('packet') ?? '',
      instructions: pre.get('instructions') ?? '',
      items: body.map((r) => ({ item: at(r, 'item'), question: shown(at(r, 'question')), answer: shown(at(r, 'answer')) })),
    },
  };
}

/** The items of an exported packet, in the order the reviewer sees them. */
export function readPacket(file: string): PacketView {
  return parsePacket(file).view;
}

/** Writes a filled copy of an exported packet to `opts.out`; returns the items rated. */
export function fillPacket(file: string, opts: FillPacketOptions): { file: string; rated: number } {
  const { rows, header, col, view } = parsePacket(file);
  const setPre = (key: string, value: string): void => {
    const r = rows.slice(1, header).find((x) => x[0]?.trim() === key);
    if (r === undefined) throw new CliniloraError('E_FORMAT', `the packet has no '${key}' row`, { file, field: key });
    r[1] = value;
  };
  setPre('reviewer_name', opts.reviewer.name);
  setPre('reviewer_role', opts.reviewer.role);
  setPre('reviewer_credential', opts.reviewer.credential ?? '');
  let rated = 0;
  view.items.forEach((it, i) => {
    const rating = opts.rate(it, i);
    if (rating === null) return;
    const row = rows[header + 1 + i]!;
    const put = (c: string, v: string): void => {
      while (row.length <= col.get(c)!) row.push('');
      row[col.get(c)!] = v;
    };
    for (const c of CRITERIA) {
      const v = rating[c];
      if (!Number.isInteger(v) || v < 1 || v > 5) throw new CliniloraError('E_ARG', `item ${it.item}: ${c} must be an integer 1–5`, { field: c, found: String(v) });
      put(c, String(v));
    }
    put('disclaimer', rating.disclaimer ? 'yes' : 'no');
    put('violation', rating.violation ? 'yes' : 'no');
    put('comment', rating.comment ?? '');
    rated++;
  });
  writeFileAtomic(opts.out, toCsv(rows));
  return { file: opts.out, rated };
}
