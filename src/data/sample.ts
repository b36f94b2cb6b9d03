/**
 * A dataset sample: the prompt parts (system, user) and the target answer, with a stable ID that is
 * a hash of its content, so a run can record exactly which samples it saw and a rebuilt dataset can
 * be checked against the record.
 */
import { createHash } from 'node:crypto';

export type TaskName = 'auditor' | 'heart-risk' | 'alpacare' | 'instruct';
export type SplitName = 'train' | 'validation' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'test'];

export interface Sample {
  /** sha256 of the content (system, user, answer), first 16 hex digits. */
  id: string;
  task: TaskName;
  system: string;
  user: string;
  answer: string;
  /**
   * The source record this sample derives from (a patient, a report seed, an instruction record).
   * Samples sharing a source always land in the same split.
   */
  source: string;
  /** Task-specific fields: label, risk, missing items, difficulty… (JSON-serialisable). */
  meta: Record<string, unknown>;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The stable sample ID: a hash of the content only (not of the source or meta). */
export function sampleId(system: string, user: string, answer: string): string {
  return sha256Hex(JSON.stringify([system, user, answer])).slice(0, 16);
}

/** Builds a sample, computing its ID. */
export function makeSample(
  task: TaskName,
  parts: { system: string; user: string; answer: string; source: string; meta?: Record<string, unknown> },
): Sample {
  return {
    id: sampleId(parts.system, parts.user, parts.answer),
    task,
    system: parts.system,
    user: parts.user,
    answer: parts.answer,
    source: parts.source,
    meta: parts.meta ?? {},
  };
}

/**
 * Content key for leakage checks: the prompt and answer with whitespace collapsed and case folded,
 * so a copy that differs only in spacing still counts as the same sample.
 */
export function contentKey(s: Pick<Sample, 'user' | 'answer'>): string {
  const norm = (t: string): string => t.replace(/\s+/g, ' ').trim().toLowerCase();
  return sha256Hex(`${norm(s.user)}\u0000${norm(s.answer)}`);
}
