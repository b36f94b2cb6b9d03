/** Predictions files: one JSON object a line, written atomically (temp file + rename). */
import { readFileSync } from 'node:fs';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** Writes `rows` as JSONL. NaN and ±Infinity are written as null (JSON has no such numbers). */
export function writePredictions(path: string, rows: readonly object[]): void {
  writeFileAtomic(path, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

/** Reads a JSONL predictions file; a bad line is an error naming the file and line. */
export function readPredictions<T = Record<string, unknown>>(path: string): T[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new CliniloraError('E_FORMAT', 'a predictions line is not JSON', { file: path, line: i + 1, hint: (e as Error).message });
    }
  });
  return out;
}
