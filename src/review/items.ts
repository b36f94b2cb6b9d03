/**
 * What can be reviewed in a run: every predictions row that holds a question and a generated answer.
 * An AlpaCare evaluation writes `predictions-<split>-<who>.jsonl` (who = adapter or base, the
 * condition), where the adversarial rows carry the raw answer, what the post-filter shows
 * (`filtered`) and the filter's findings; their question is looked up in the adversarial set by id
 * unless the row carries it (`prompt`). Held-out rows (perplexity only) have no answer and are skipped.
 */
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { cliniloraHome } from '../data/index.ts';
import { loadAdversarialSet } from '../data/alpacare/adversarial.ts';
import { readPredictions } from '../eval/predictions.ts';
import { CliniloraError } from '../errors.ts';
import type { RunRecord } from '../tracker/schema.ts';
import { runsDir } from '../tracker/store.ts';

/** Which text reviewers see: what the post-filter lets through, or the model's raw answer. */
export type AnswerSource = 'filtered' | 'raw';

export interface ReviewSource {
  /** The sample or adversarial prompt id. */
  sample: string;
  /** The condition the answer comes from (the predictions file's `who`: adapter, base…). */
  condition: string;
  /** The predictions file (as recorded in the run's artifacts) and 1-based line. */
  predictions: string;
  line: number;
  question: string;
  answer: string;
  category?: string;
  /** The automatic post-filter's verdict on the raw answer (for comparison with the humans). */
  ruleViolation: boolean;
  ruleDisclaimer: boolean;
}

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

/** `predictions-test-adapter.jsonl` → 'adapter'; another name → its stem. */
export function conditionOf(file: string): string {
  const stem = basename(file).replace(/\.jsonl$/, '');
  const m = /^predictions-[^-]+-(.+)$/.exec(stem);
  return m !== null ? m[1]! : stem;
}

/** Where a recorded artifact is now: its path under the home, or the run directory by name. */
function artifactPath(path: string, runId: string, root?: string): string {
  const home = root !== undefined ? resolve(root) : cliniloraHome();
  const direct = isAbsolute(path) ? path : join(home, path);
  if (existsSync(direct)) return direct;
  const inRun = join(runsDir(root), runId, basename(path));
  if (existsSync(inRun)) return inRun;
  throw new CliniloraError('E_MISSING', 'a predictions file recorded in the run is gone', { file: direct, field: 'artifacts', hint: `also looked for ${inRun}` });
}

/**
 * The reviewable items of `run`, in file then line order. `answer` picks the text shown; by default
 * the filtered one when the run's config had the post-filter on (what a user would have read).
 */
export function reviewSources(run: RunRecord, opts: { root?: string; answer?: AnswerSource; conditions?: readonly string[] } = {}): { sources: ReviewSource[]; answer: AnswerSource; skipped: number } {
  const evalCfg = (run.config.eval ?? {}) as { postFilter?: unknown };
  const answer: AnswerSource = opts.answer ?? (evalCfg.postFilter === false ? 'raw' : 'filtered');
  const files = run.artifacts.filter((a) => a.kind === 'predictions' || /(^|\/)predictions-[^/]*\.jsonl$/.test(a.path));
  if (files.length === 0) {
    throw new CliniloraError('E_MISSING', `run ${run.id} has no predictions file to review`, {
      field: 'artifacts',
      expected: "an artifact of kind 'predictions' (written by clinilora eval or train)",
      found: run.artifacts.map((a) => a.path).join(', ') || 'no artifacts',
    });
  }
  let adversarial: Map<string, string> | undefined;
  const questionFor = (id: string): string | null => {
    adversarial ??= new Map(loadAdversarialSet().map((a) => [a.id, a.prompt]));
    return adversarial.get(id) ?? null;
  };
  const sources: ReviewSource[] = [];
  let skipped = 0;
  for (const a of files) {
    const condition = conditionOf(a.path);
    if (opts.conditions !== undefined && !opts.conditions.includes(condition)) continue;
    const file = artifactPath(a.path, run.id, opts.root);
    readPredictions<Record<string, unknown>>(file).forEach((row, i) => {
      const raw = text(row.raw) ?? text(row.answer) ?? text(row.output);
      const shown = answer === 'filtered' ? (text(row.filtered) ?? null) : raw;
      if (raw === null && shown === null) {
        skipped++; // no generated answer (a perplexity-only row)
        return;
      }
      const id = text(row.id);
      const where = { file, line: i + 1 };
      if (id === null) throw new CliniloraError('E_FORMAT', 'a predictions row has no id', { ...where, field: 'id', expected: 'a sample id', found: JSON.stringify(row.id) });
      if (shown === null) {
        throw new CliniloraError('E_FORMAT', `row has no ${answer} answer`, { ...where, field: answer, expected: 'the answer text', found: JSON.stringify(row[answer]), hint: answer === 'filtered' ? 'pass --answer raw' : undefined });
      }
      const question = text(row.prompt) ?? text(row.question) ?? text(row.instruction) ?? questionFor(id);
      if (question === null) {
        throw new CliniloraError('E_FORMAT', 'the question of a predictions row is unknown', { ...where, field: 'prompt', expected: 'a prompt field, or an id of the adversarial set', found: id });
      }
      const violations = Array.isArray(row.violations) ? row.violations : [];
      sources.push({
        sample: id,
        condition,
        predictions: a.path,
        line: i + 1,
        question,
        answer: shown,
        ...(typeof row.category === 'string' ? { category: row.category } : {}),
        ruleViolation: violations.length > 0,
        ruleDisclaimer: row.disclaimer === true,
      });
    });
  }
  if (opts.conditions !== undefined) {
    const have = new Set(files.map((a) => conditionOf(a.path)));
    const unknown = opts.conditions.filter((c) => !have.has(c));
    if (unknown.length > 0) throw new CliniloraError('E_ARG', `no predictions for condition '${unknown[0]}'`, { field: '--conditions', expected: [...have].join(' | '), found: unknown.join(', ') });
  }
  return { sources, answer, skipped };
}
