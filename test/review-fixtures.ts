/**
 * An AlpaCare run to review (not a test file itself): a completed eval run in a temporary home with
 * two predictions files, `predictions-test-adapter.jsonl` and `predictions-test-base.jsonl`, shaped
 * as src/pipeline/evaluate.ts writes them (held-out perplexity rows, then adversarial rows from
 * evaluateSafety with `kind` and `raw`). Answers hold commas, quotes, newlines, a leading '=' and
 * non-ASCII text, the things a CSV round trip can break.
 */
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '../src/config/index.ts';
import { loadAdversarialSet } from '../src/data/alpacare/adversarial.ts';
import { writePredictions } from '../src/eval/predictions.ts';
import { evaluateSafety } from '../src/eval/safety-rates.ts';
import { openRun, type RunRecord } from '../src/tracker/index.ts';

export const PER_CONDITION = 12;

/** papaparse used directly (it ships no types), so the tests read and write CSV independently of src/review/csv.ts. */
export const Papa = createRequire(import.meta.url)('papaparse') as {
  parse(text: string, config?: { delimiter?: string }): { data: string[][] };
  unparse(rows: string[][], config?: { newline?: string; delimiter?: string }): string;
};

export interface ReviewFixture {
  home: string;
  gitDir: string;
  run: RunRecord;
  /** condition → sample id → the answer shown (the filtered text). */
  shown: Record<string, Record<string, string>>;
  questions: Record<string, string>;
}

function answerFor(condition: string, i: number): string {
  const body = [
    `Answer ${i} (${condition === 'adapter' ? 'tuned' : 'plain'}): rest, fluids, and "watchful waiting" are common first steps.`,
    `=SUM(A1:A2) is not advice, it is text; keep it literal.\nA second line, with a comma.`,
    `Ärztliche Beratung – bitte; naïve café “quotes”.\n\nNew paragraph.`,
    `- a list item\n- another, with "quotes"`,
  ][i % 4]!;
  return `${body}\n\nPlease talk to a qualified clinician.`;
}

export async function makeReviewRun(): Promise<ReviewFixture> {
  const home = mkdtempSync(join(tmpdir(), 'clinilora-review-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-review-nogit-'));
  const prompts = loadAdversarialSet().slice(0, PER_CONDITION);
  const config = defineConfig({ task: 'alpacare', seed: 11 });
  const run = await openRun({ config, kind: 'eval', root: home, gitDir, name: 'alpacare-eval', heartbeatMs: 0, flushMs: 0 });
  const shown: ReviewFixture['shown'] = {};
  for (const condition of ['adapter', 'base']) {
    const raws = prompts.map((_, i) => answerFor(condition, i));
    const safety = evaluateSafety(prompts.map((p, i) => ({ id: p.id, raw: raws[i]!, category: p.category })), { enabled: true });
    const heldout = [{ id: 'alpacare-0001', kind: 'heldout', nll: 2.5, tokens: 10 }, { id: 'alpacare-0002', kind: 'heldout', nll: 2.1, tokens: 12 }];
    const rows = [...heldout, ...safety.rows.map((r, i) => ({ ...r, kind: 'adversarial', raw: raws[i]! }))];
    const file = join(run.dir, `predictions-test-${condition}.jsonl`);
    writePredictions(file, rows);
    await run.addArtifact(file, { kind: 'predictions' });
    shown[condition] = Object.fromEntries(safety.rows.map((r) => [r.id, r.filtered]));
  }
  run.finish('completed', { metrics: { violation_rate: 0 } });
  return { home, gitDir, run: run.record as RunRecord, shown, questions: Object.fromEntries(prompts.map((p) => [p.id, p.prompt])) };
}
