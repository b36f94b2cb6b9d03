/**
 * Task evaluation of one model (base alone, or base + adapter) on a list of samples: the model
 * answers, the task's evaluator scores the answers, and everything comes back as
 *   - `metrics`: flat finite numbers for the run record (`accuracy`, `f1_weighted`, …),
 *   - `predictions`: one row per sample for the predictions file,
 *   - `report`: the evaluator's full object (confusion matrix, reliability curve, per category…).
 * Generation is batched with left padding (prompts sorted by length so a batch pads little) and its
 * speed is measured (`gen_tokens_per_sec`).
 */
import type { CliniloraConfig } from '../config/defaults.ts';
import { validateReport, type AuditReport } from '../data/auditor/index.ts';
import { adversarialSlice, loadAdversarialSet, type AdversarialPrompt } from '../data/alpacare/adversarial.ts';
import { heartBaseline, heartMeta, parseRiskAnswer } from '../data/heart/index.ts';
import type { Sample, SplitName } from '../data/sample.ts';
import type { Splits } from '../data/split.ts';
import { evaluateAuditor } from '../eval/auditor.ts';
import { evaluateHeart } from '../eval/heart.ts';
import { answerNlls, riskProbabilityFromModel } from '../eval/model-probs.ts';
import { evaluateSafety } from '../eval/safety-rates.ts';
import { perplexity } from '../eval/text-metrics.ts';
import { generate, type GenerateOptions } from '../model/generate.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { safeMessages } from '../safety/generate.ts';
import type { SafetyConfig, SafetyRule } from '../safety/index.ts';
import type { Phi3Tokenizer } from '../tokenizer/index.ts';
import { Rng } from '../util/random.ts';
import { sampleMessages } from '../data/tokens.ts';

export interface TaskEvaluation {
  task: CliniloraConfig['task'];
  split: SplitName;
  n: number;
  metrics: Record<string, number>;
  predictions: Array<Record<string, unknown>>;
  report: Record<string, unknown>;
}

export interface EvaluateOptions {
  config: CliniloraConfig;
  /** The dataset's splits: the heart baseline is fitted on `train`. */
  splits?: Splits;
  split?: SplitName;
  /** Progress lines (e.g. "generated 32/200"). */
  onProgress?: (line: string) => void;
}

/** Generation settings from `config.eval` (greedy when temperature is 0), seeded from config.seed. */
export function generationOptions(config: CliniloraConfig): GenerateOptions {
  const e = config.eval;
  return {
    maxNewTokens: e.maxNewTokens,
    greedy: e.temperature <= 0,
    temperature: e.temperature,
    topP: e.topP,
    topK: e.topK,
    repetitionPenalty: e.repetitionPenalty,
    rng: new Rng(config.seed).split('sampling'),
  };
}

/** The safety config of `config.eval` (post-filter on/off, extra forbidden patterns). */
export function safetyConfig(config: CliniloraConfig, enabled = config.eval.postFilter): SafetyConfig {
  const extraRules: SafetyRule[] = config.eval.forbiddenPatterns.map((pattern, i) => ({
    id: `config.forbidden_${i}`,
    category: 'dose',
    description: `config eval.forbiddenPatterns[${i}]`,
    pattern,
  }));
  return { enabled, extraRules };
}

export interface BatchGeneration {
  texts: string[];
  tokens: number[][];
  /** Generated tokens (all rows) and wall time. */
  generatedTokens: number;
  ms: number;
}

/** Batched generation of chat prompts (ids ending with the generation prompt), output in input order. */
export function generateBatched(
  model: Phi3ForCausalLM,
  tokenizer: Phi3Tokenizer,
  prompts: readonly number[][],
  gen: GenerateOptions,
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): BatchGeneration {
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a]!.length - prompts[b]!.length);
  const tokens: number[][] = new Array<number[]>(prompts.length);
  const t0 = performance.now();
  let generated = 0;
  for (let s = 0; s < order.length; s += batchSize) {
    const ix = order.slice(s, s + batchSize);
    const out = generate(model, ix.map((i) => prompts[i]!), gen);
    out.forEach((r, k) => {
      tokens[ix[k]!] = r.tokens;
      generated += r.tokens.length;
    });
    onProgress?.(Math.min(s + batchSize, order.length), order.length);
  }
  const ms = performance.now() - t0;
  return { texts: tokens.map((t) => tokenizer.decode(t, { skipSpecial: true }).trim()), tokens, generatedTokens: generated, ms };
}

const promptIds = (tok: Phi3Tokenizer, s: Pick<Sample, 'system' | 'user'>): number[] =>
  tok.encodeChat(sampleMessages({ ...s, answer: '' }).slice(0, 2), { addGenerationPrompt: true });

function speed(g: BatchGeneration): Record<string, number> {
  return { gen_tokens: g.generatedTokens, gen_ms: Math.round(g.ms), gen_tokens_per_sec: g.ms > 0 ? (g.generatedTokens * 1000) / g.ms : 0 };
}

/** Evaluates `model` on `samples` (already limited to the split and count wanted). */
export function evaluateTask(model: Phi3ForCausalLM, tokenizer: Phi3Tokenizer, samples: readonly Sample[], opts: EvaluateOptions): TaskEvaluation {
  const { config } = opts;
  const split = opts.split ?? config.eval.split;
  const progress = (what: string) => (done: number, total: number) => opts.onProgress?.(`${what} ${done}/${total}`);
  switch (config.task) {
    case 'auditor':
      return evaluateAuditorTask(model, tokenizer, samples, config, split, progress('generated'));
    case 'heart-risk':
      return evaluateHeartTask(model, tokenizer, samples, opts, split, progress('generated'));
    case 'alpacare':
      return evaluateAlpacareTask(model, tokenizer, samples, config, split, progress('adversarial generated'));
  }
}

function evaluateAuditorTask(model: Phi3ForCausalLM, tok: Phi3Tokenizer, samples: readonly Sample[], config: CliniloraConfig, split: SplitName, onProgress: (d: number, t: number) => void): TaskEvaluation {
  const g = generateBatched(model, tok, samples.map((s) => promptIds(tok, s)), generationOptions(config), config.eval.batchSize, onProgress);
  const reports = samples.map((s) => validateReport(s.meta.report, { file: `sample ${s.id}` }) as AuditReport);
  const ev = evaluateAuditor(samples.map((s, i) => ({ id: s.id, report: reports[i]!, answerText: g.texts[i]! })));
  const m = ev.model;
  const metrics: Record<string, number> = {
    n: ev.n,
    accuracy: m.accuracy,
    f1_weighted: m.weighted.f1,
    precision_weighted: m.weighted.precision,
    recall_weighted: m.weighted.recall,
    f1_macro: m.macro.f1,
    unparseable_rate: m.unparseableRate,
    // Left out when no explanation cites a number: undefined, not perfect (the record holds finite numbers only).
    ...(ev.faithfulness.mean !== null ? { faithfulness: ev.faithfulness.mean } : {}),
    ...(ev.faithfulness.micro !== null ? { faithfulness_micro: ev.faithfulness.micro } : {}),
    reference_accuracy: ev.baselines.reference.accuracy,
    reference_f1_weighted: ev.baselines.reference.weighted.f1,
    majority_accuracy: ev.baselines.majority.accuracy,
    majority_f1_weighted: ev.baselines.majority.weighted.f1,
    ...speed(g),
  };
  const { rows, ...report } = ev;
  return {
    task: 'auditor',
    split,
    n: ev.n,
    metrics,
    predictions: rows.map((r, i) => ({ ...r, target: samples[i]!.answer, tokens: g.tokens[i]!.length })),
    report: report as unknown as Record<string, unknown>,
  };
}

function evaluateHeartTask(model: Phi3ForCausalLM, tok: Phi3Tokenizer, samples: readonly Sample[], opts: EvaluateOptions, split: SplitName, onProgress: (d: number, t: number) => void): TaskEvaluation {
  const { config } = opts;
  const prompts = samples.map((s) => promptIds(tok, s));
  const readings = prompts.map((p) => riskProbabilityFromModel(model, p, tok));
  // Generated answers only where an item is missing: the missing-item detection is read from them.
  const incomplete = samples.map((s, i) => [s, i] as const).filter(([s]) => heartMeta(s).missing.length > 0);
  const g = generateBatched(model, tok, incomplete.map(([, i]) => prompts[i]!), generationOptions(config), config.eval.batchSize, onProgress);
  const answerOf = new Map(incomplete.map(([, i], k) => [i, g.texts[k]!]));
  const preds = samples.map((s, i) => {
    const meta = heartMeta(s);
    const answer = answerOf.get(i);
    return { id: s.id, probability: readings[i]!.probability, label: meta.death_event, missingTrue: meta.missing, missingNamed: answer === undefined ? [] : parseRiskAnswer(answer).missing };
  });
  // Baseline: the logistic regression on the same patients (full variants of the evaluated split).
  let baseline: Array<{ probability: number; label: 0 | 1 }> | undefined;
  let baselineNote = 0;
  if (opts.splits !== undefined && opts.splits.train.length > 0) {
    try {
      const b = heartBaseline(opts.splits, { evalSplit: split, includeTime: config.data.includeTime });
      const byPatient = new Map(b.predictions.map((p) => [p.patient, p]));
      const evaluated = new Set(samples.map((s) => heartMeta(s).patient));
      baseline = [...byPatient.values()].filter((p) => evaluated.has(p.patient)).map((p) => ({ probability: p.probability, label: p.death_event }));
      if (baseline.length === 0) baseline = undefined;
    } catch {
      baselineNote = 1; // too few patients in a tiny split for a baseline; the metric says so
    }
  }
  const ev = evaluateHeart(preds, { seed: config.seed, resamples: 500, ...(baseline !== undefined ? { baseline } : {}) });
  const fin = (x: number): number[] => (Number.isFinite(x) ? [x] : []);
  const metrics: Record<string, number> = { n: ev.n };
  const put = (k: string, x: number): void => fin(x).forEach((v) => (metrics[k] = v));
  put('auc', ev.auc.auc);
  put('auc_lower', ev.auc.lower);
  put('auc_upper', ev.auc.upper);
  put('accuracy', ev.accuracy);
  put('ece', ev.ece);
  put('brier', ev.brier);
  put('missing_precision', ev.missing.precision);
  put('missing_recall', ev.missing.recall);
  put('missing_f1', ev.missing.f1);
  put('level_mass', mean(readings.map((r) => r.mass.levels)));
  if (ev.baseline !== undefined) {
    put('baseline_auc', ev.baseline.auc.auc);
    put('baseline_accuracy', ev.baseline.accuracy);
    put('baseline_brier', ev.baseline.brier);
    put('baseline_ece', ev.baseline.ece);
  }
  metrics.baseline_unavailable = baselineNote;
  Object.assign(metrics, speed(g));
  return {
    task: 'heart-risk',
    split,
    n: ev.n,
    metrics,
    predictions: preds.map((p, i) => ({ ...p, levels: readings[i]!.levels, answer: answerOf.get(i) ?? null, target: samples[i]!.answer })),
    report: ev as unknown as Record<string, unknown>,
  };
}

function evaluateAlpacareTask(model: Phi3ForCausalLM, tok: Phi3Tokenizer, samples: readonly Sample[], config: CliniloraConfig, split: SplitName, onProgress: (d: number, t: number) => void): TaskEvaluation {
  // Perplexity on the held-out answers (answer tokens and the closing <|end|>).
  const nlls: number[] = [];
  const rows: Array<Record<string, unknown>> = [];
  for (const s of samples) {
    const p = promptIds(tok, s);
    const a = [...tok.encode(s.answer), tok.tokenToId('<|end|>')!];
    const max = model.config.maxPositionEmbeddings;
    const keep = Math.max(1, Math.min(a.length, max - p.length));
    if (p.length >= max) continue;
    const x = answerNlls(model, p, a.slice(0, keep));
    nlls.push(...x);
    rows.push({ id: s.id, kind: 'heldout', nll: x.reduce((u, v) => u + v, 0) / x.length, tokens: x.length });
  }
  // The adversarial set, with and without the post-filter (raw outputs scored both ways).
  const adversarial: AdversarialPrompt[] = adversarialSlice(loadAdversarialSet(), config.eval.n);
  const prompts = adversarial.map((a) => tok.encodeChat(safeMessages(a.prompt), { addGenerationPrompt: true }));
  const g = generateBatched(model, tok, prompts, generationOptions(config), config.eval.batchSize, onProgress);
  const safety = evaluateSafety(adversarial.map((a, i) => ({ id: a.id, raw: g.texts[i]!, category: a.category })), safetyConfig(config, true));
  const metrics: Record<string, number> = { n: samples.length, adversarial_n: adversarial.length };
  if (nlls.length > 0) metrics.perplexity = perplexity(nlls);
  const rates = (prefix: string, r: { violationRate: number; refusalRate: number; disclaimerRate: number }): void => {
    for (const [k, v] of [['violation_rate', r.violationRate], ['refusal_rate', r.refusalRate], ['disclaimer_rate', r.disclaimerRate]] as const) {
      if (Number.isFinite(v)) metrics[`${prefix}${k}`] = v;
    }
  };
  rates('', safety.withoutFilter);
  rates('filtered_', safety.withFilter);
  Object.assign(metrics, speed(g));
  const { rows: srows, ...report } = safety;
  return {
    task: 'alpacare',
    split,
    n: samples.length,
    metrics,
    predictions: [...rows, ...srows.map((r, i) => ({ ...r, kind: 'adversarial', raw: g.texts[i]! }))],
    report: report as unknown as Record<string, unknown>,
  };
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
