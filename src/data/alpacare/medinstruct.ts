/**
 * Loader and cleaner for MedInstruct-52k-format files (`instruction`, `input`, `output`; JSON array
 * or JSONL). Records in the `{"instruction","response"}` form are accepted too (the 112-record
 * instruction set uses it). Cleaning: whitespace normalised and stray control characters stripped;
 * records dropped when empty, too long for the token limit, or exact duplicates; every drop and
 * change is counted.
 */
import { instructUser, normalizeText, readJsonRecords, toInstructRecord } from '../instruct.ts';

/**
 * A cheap token estimate: characters / 3.5 (English prose with the Llama/Phi-3 SentencePiece
 * vocabulary runs at about 3.5–4.5 characters a token, so this errs long). Pass the real tokenizer's
 * count when it is available.
 */
export function estimateTokensByChars(text: string): number {
  return Math.ceil(text.length / 3.5);
}

export type DropReason = 'empty_instruction' | 'empty_output' | 'truncated' | 'too_long' | 'duplicate';
export const DROP_REASONS: readonly DropReason[] = ['empty_instruction', 'empty_output', 'truncated', 'too_long', 'duplicate'];

export interface MedInstructOptions {
  /** Token counter for the length limit (default estimateTokensByChars). */
  countTokens?: (text: string) => number;
  /**
   * Records whose instruction + input + output exceed this are dropped (default 512). The safety
   * prefix, the disclaimer and the chat template come on top of it.
   */
  maxTokens?: number;
  /**
   * Cut answers that stop mid-sentence back to their last complete sentence (for sets generated
   * with an output-length cap, like the AlpaCare test answers); drop them when that would lose more
   * than half. Off by default: lists often end without a full stop.
   */
  repairTruncated?: boolean;
  /** Keys already seen (instruction, input, output), shared across files for cross-file duplicates. */
  seen?: Set<string>;
}

export interface CleanRecord {
  instruction: string;
  input: string;
  output: string;
  /** Line of the record in its file. */
  line: number;
  tokens: number;
  /** The record's other fields as given (id, difficulty, source_urls…). */
  extra: Record<string, unknown>;
}

export interface CleaningStats {
  file: string;
  read: number;
  kept: number;
  dropped: Record<DropReason, number>;
  /** Records that had control characters removed, and how many characters in all. */
  controlCharRecords: number;
  controlChars: number;
  /** Records whose whitespace normalisation changed something. */
  whitespaceRecords: number;
  /** Answers cut back to their last complete sentence. */
  truncatedTrimmed: number;
}

/** A sentence end: . ! or ? (plus closing quotes/brackets/emphasis) before whitespace or the end. */
const SENTENCE_END = /[.!?]+["'”’)\]*]*(?=\s|$)/g;

/** Whether an answer stops mid-sentence. */
export function looksTruncated(text: string): boolean {
  return !/[.!?]["'”’)\]*]*$/.test(text.trimEnd());
}

/** The text up to its last complete sentence (list numbers like "7." are not sentence ends). */
export function trimToLastSentence(text: string): string {
  let end = -1;
  for (const m of text.matchAll(SENTENCE_END)) {
    const lineStart = text.lastIndexOf('\n', m.index) + 1;
    const before = text.slice(lineStart, m.index);
    if (/^\s*(\d+|[a-z])$/i.test(before)) continue; // "7." or "a." list marker
    end = m.index + m[0].length;
  }
  return end < 0 ? '' : text.slice(0, end).trimEnd();
}

export function loadMedInstruct(file: string, opts: MedInstructOptions = {}): { records: CleanRecord[]; stats: CleaningStats } {
  const countTokens = opts.countTokens ?? estimateTokensByChars;
  const maxTokens = opts.maxTokens ?? 512;
  const seen = opts.seen ?? new Set<string>();
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  const stats: CleaningStats = { file, read: 0, kept: 0, dropped, controlCharRecords: 0, controlChars: 0, whitespaceRecords: 0, truncatedTrimmed: 0 };
  const records: CleanRecord[] = [];
  for (const { line, value } of readJsonRecords(file)) {
    stats.read++;
    const rec = toInstructRecord(value, file, line);
    const fields = [rec.instruction, rec.input, rec.output].map(normalizeText);
    const ctrl = fields.reduce((s, f) => s + f.controlChars, 0);
    if (ctrl > 0) {
      stats.controlCharRecords++;
      stats.controlChars += ctrl;
    }
    if (fields.some((f) => f.whitespaceChanged)) stats.whitespaceRecords++;
    const [instruction, input] = [fields[0]!.text, fields[1]!.text];
    let output = fields[2]!.text;
    if (instruction === '') {
      dropped.empty_instruction++;
      continue;
    }
    if (output === '') {
      dropped.empty_output++;
      continue;
    }
    if (opts.repairTruncated && looksTruncated(output)) {
      const trimmed = trimToLastSentence(output);
      if (trimmed.length < output.length / 2) {
        dropped.truncated++;
        continue;
      }
      output = trimmed;
      stats.truncatedTrimmed++;
    }
    const tokens = countTokens(`${instructUser(instruction, input)}\n${output}`);
    if (tokens > maxTokens) {
      dropped.too_long++;
      continue;
    }
    const key = JSON.stringify([instruction, input, output]);
    if (seen.has(key)) {
      dropped.duplicate++;
      continue;
    }
    seen.add(key);
    const { instruction: _i, input: _in, output: _o, response: _r, ...extra } = value as Record<string, unknown>;
    records.push({ instruction, input, output, line, tokens, extra });
  }
  stats.kept = records.length;
  return { records, stats };
}
