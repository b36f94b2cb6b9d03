/**
 * Users' own instruction data: JSONL with `{"instruction","response"}` or
 * `{"instruction","input","output"}` lines (the form is detected per line), into Samples of task
 * 'instruct'. Also the pieces the AlpaCare loader shares: reading JSON/JSONL records with their line
 * numbers, and text normalisation (whitespace, stray control characters).
 */
import { readFileSync } from 'node:fs';
import { CliniloraError } from '../errors.ts';
import { makeSample, sha256Hex, type Sample } from './sample.ts';

export interface JsonRecord {
  /** 1-based line where the record starts. */
  line: number;
  value: unknown;
}

/** Line (1-based) of a character offset. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Reads a JSON array or JSONL file (detected by the first non-blank character) into records with
 * their line numbers. Invalid JSON is an error naming the file and line.
 */
export function readJsonRecords(file: string): JsonRecord[] {
  let text = readFileSync(file, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = /\S/.exec(text);
  if (first && first[0] === '[') return readJsonArray(text, file);
  const out: JsonRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    try {
      out.push({ line: i + 1, value: JSON.parse(line) as unknown });
    } catch (e) {
      throw new CliniloraError('E_FORMAT', `invalid JSON: ${(e as Error).message}`, {
        file,
        line: i + 1,
        expected: 'one JSON object per line (JSONL) or a JSON array',
        found: line.length > 60 ? `${line.slice(0, 60)}…` : line,
      });
    }
  });
  return out;
}

function readJsonArray(text: string, file: string): JsonRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const lineCol = /line (\d+)/.exec(msg);
    const line = pos ? lineAt(text, Number(pos[1])) : lineCol ? Number(lineCol[1]) : undefined;
    throw new CliniloraError('E_FORMAT', `invalid JSON: ${msg}`, { file, line, expected: 'a JSON array of objects' });
  }
  if (!Array.isArray(parsed)) {
    throw new CliniloraError('E_FORMAT', 'expected a JSON array of records', { file, line: 1, found: typeof parsed });
  }
  // Line of each element: the start of each top-level element, found by a string-aware scan.
  const starts: number[] = [];
  let depth = 0;
  let inString = false;
  let line = 1;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (depth === 1 && expectElement && !/\s/.test(c) && c !== ']') {
      starts.push(line);
      expectElement = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectElement = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectElement = true;
  }
  return parsed.map((value: unknown, i) => ({ line: starts[i] ?? 1, value }));
}

/** Stray control characters: C0 except tab/newline, DEL, C1, zero-width space, word joiner, BOM. */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200B\u2060\uFEFF]/g;

export interface NormalizedText {
  text: string;
  /** How many control characters were removed. */
  controlChars: number;
  /** Whether whitespace normalisation changed anything. */
  whitespaceChanged: boolean;
}

/**
 * Normalises text without touching its structure: CR/CRLF and Unicode line separators → \n, stray
 * control characters removed, tabs and no-break spaces → space, runs of spaces inside a line → one
 * (leading indentation kept, for nested lists), trailing spaces removed, 3+ newlines → 2, trimmed.
 */
export function normalizeText(raw: string): NormalizedText {
  const lf = raw.replace(/\r\n?|[\u2028\u2029]/g, '\n');
  const controlChars = (lf.match(CONTROL) ?? []).length;
  const clean = lf.replace(CONTROL, '');
  const text = clean
    .split('\n')
    .map((l) => {
      const spaced = l.replace(/[\t\u00A0]/g, ' ');
      const indent = /^ */.exec(spaced)![0];
      return indent + spaced.slice(indent.length).replace(/ {2,}/g, ' ').replace(/ +$/, '');
    })
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return { text, controlChars, whitespaceChanged: text !== clean };
}

export type InstructForm = 'instruction-response' | 'instruction-input-output';

export interface InstructRecord {
  form: InstructForm;
  instruction: string;
  input: string;
  output: string;
  line: number;
}

/**
 * Detects a record's form: `response` → instruction/response, `output` → instruction/input/output.
 * Anything else (or a non-string field) is an error naming the file, the line and the fields expected.
 */
export function toInstructRecord(value: unknown, file: string, line: number): InstructRecord {
  const expected = '{"instruction", "response"} or {"instruction", "input", "output"}';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliniloraError('E_FORMAT', 'instruction record is not a JSON object', { file, line, expected, found: JSON.stringify(value)?.slice(0, 60) });
  }
  const r = value as Record<string, unknown>;
  const form: InstructForm | undefined =
    'instruction' in r && 'response' in r ? 'instruction-response' : 'instruction' in r && 'output' in r ? 'instruction-input-output' : undefined;
  if (!form) {
    throw new CliniloraError('E_FORMAT', 'instruction record has neither known form', {
      file,
      line,
      field: 'instruction' in r ? 'response/output' : 'instruction',
      expected,
      found: `fields ${JSON.stringify(Object.keys(r))}`,
    });
  }
  const str = (k: string): string => {
    const v = r[k];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw new CliniloraError('E_FORMAT', 'field must be a string', { file, line, field: k, expected: 'string', found: typeof v });
    return v;
  };
  return {
    form,
    instruction: str('instruction'),
    input: form === 'instruction-input-output' ? str('input') : '',
    output: str(form === 'instruction-response' ? 'response' : 'output'),
    line,
  };
}

/** The user turn of an instruction record: the instruction, then the input (if any) after a blank line. */
export function instructUser(instruction: string, input: string): string {
  return input === '' ? instruction : `${instruction}\n\n${input}`;
}

/** Source key of an instruction: records with the same prompt share it (and therefore a split). */
export function instructSource(prefix: string, instruction: string, input: string): string {
  const key = `${instruction}\u0000${input}`.replace(/\s+/g, ' ').trim().toLowerCase();
  return `${prefix}:${sha256Hex(key).slice(0, 16)}`;
}

export interface InstructLoadOptions {
  /** System prompt for every sample (default empty). */
  system?: string;
}

/**
 * Loads a user's instruction JSONL (or JSON array) into samples (task 'instruct'). Text is
 * normalised; an empty instruction or answer is an error naming the line, since a user's own file
 * should be fixed rather than silently thinned.
 */
export function loadInstructJsonl(file: string, opts: InstructLoadOptions = {}): Sample[] {
  const system = opts.system ?? '';
  return readJsonRecords(file).map(({ line, value }) => {
    const rec = toInstructRecord(value, file, line);
    const instruction = normalizeText(rec.instruction).text;
    const input = normalizeText(rec.input).text;
    const output = normalizeText(rec.output).text;
    for (const [field, text] of [['instruction', instruction], [rec.form === 'instruction-response' ? 'response' : 'output', output]] as const) {
      if (text === '') throw new CliniloraError('E_FORMAT', 'empty field', { file, line, field, expected: 'non-empty text' });
    }
    return makeSample('instruct', {
      system,
      user: instructUser(instruction, input),
      answer: output,
      source: instructSource('instruct', instruction, input),
      meta: { form: rec.form, line },
    });
  });
}
