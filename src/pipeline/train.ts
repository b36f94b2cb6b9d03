/**
 * One training run, as DESIGN.md's "One run, as data flows" describes it: resolved config → run
 * record (config + hash, seed, git, backend) → dataset (manifest with sample IDs into the record) →
 * tokenizer → base (quantized as configured) → LoRA → `train()` with every step, eval and checkpoint
 * written to the record → test-split evaluation of the base alone and of base + adapter → the adapter
 * in PEFT format (sha256 in the record) → record finished: completed, interrupted or failed.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CliniloraConfig } from '../config/defaults.ts';
import { configHash } from '../config/load.ts';
import { phi3Tokenizer } from '../data/tokens.ts';
import type { Sample } from '../data/sample.ts';
import { writePredictions } from '../eval/predictions.ts';
import { attachLora } from '../model/lora/model.ts';
import { saveLoraAdapter } from '../model/lora/peft-files.ts';
import { PHI3_PAD_ID } from '../tokenizer/index.ts';
import { encodeSample } from '../train/batching.ts';
import type { TrainConfig } from '../train/trainer.ts';
import { answerLoss, train } from '../train/trainer.ts';
import { progressCallbacks } from '../train/progress.ts';
import type { TrainCallbacks, TrainSummary } from '../train/callbacks.ts';
import { openRun, type RunHandle } from '../tracker/run.ts';
import type { FinalStatus } from '../tracker/schema.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { Rng } from '../util/random.ts';
import { baseModelInfo, describeBase, loadBase, parseBaseSpec } from './base.ts';
import { evaluateTask, type TaskEvaluation } from './evaluate.ts';
import { backendSummary, datasetFor, loraConfigOf, startBackend, writeAdapterMeta } from './resources.ts';

export interface RunTrainingOptions {
  /** Human lines (progress, what is happening); default: none. The trainer's own progress goes to stderr. */
  onProgress?: (line: string) => void;
  /** Aborting interrupts training like SIGINT (the step finishes, a checkpoint is written). */
  signal?: AbortSignal;
  /** Run name (default `<task>-train`, the CLI passes the config file's name). */
  name?: string;
  /** Evaluate the base alone on the same split too (default true). */
  compareBase?: boolean;
  /** Continue from this checkpoint directory (it must come from the same config and data). */
  resumeFrom?: string;
  /** Trainer progress display on stderr (default true). */
  progress?: boolean;
  /** Install SIGINT/SIGTERM handlers in the trainer (default true). */
  handleSignals?: boolean;
  /** Tags for the record. */
  tags?: string[];
  /** More trainer callbacks (e.g. a notebook's live loss curve), called after the record's own. */
  callbacks?: TrainCallbacks;
}

export interface RunTrainingResult {
  runId: string;
  runDir: string;
  status: FinalStatus;
  /** The PEFT adapter directory (only when completed). */
  adapterDir: string | null;
  train: Pick<TrainSummary, 'status' | 'step' | 'totalSteps' | 'finalLoss' | 'bestValLoss' | 'bestStep' | 'tokens' | 'elapsedMs' | 'lastCheckpoint'>;
  /** Test-split evaluation of base + adapter, and of the base alone (when compared). */
  adapterEval: TaskEvaluation | null;
  baseEval: TaskEvaluation | null;
  timings: { totalMs: number; trainMs: number; evalMs: number; baseEvalMs: number };
  metrics: Record<string, number>;
}

/** Samples of a split limited to `n` (the split is already in a seeded random order). */
export function limit<T>(xs: readonly T[], n: number | null): T[] {
  return n === null ? [...xs] : xs.slice(0, n);
}

/** config.training → the trainer's config. */
export function trainerConfig(config: CliniloraConfig, trainCount: number): TrainConfig {
  const t = config.training;
  const stepsPerEpoch = Math.max(1, Math.floor(Math.ceil(trainCount / t.batchSize) / t.gradAccum));
  return {
    batchSize: t.batchSize,
    gradAccumulation: t.gradAccum,
    ...(t.maxSteps !== null ? { maxSteps: t.maxSteps } : { epochs: t.epochs ?? 1 }),
    lr: t.lr,
    schedule: t.schedule,
    warmupRatio: t.warmupRatio,
    weightDecay: t.weightDecay,
    betas: [t.adamBeta1, t.adamBeta2],
    eps: t.adamEps,
    maxGradNorm: t.maxGradNorm ?? 0,
    evalEvery: t.evalEvery ?? stepsPerEpoch,
    evalBatchSize: t.batchSize,
    ...(t.patience !== null ? { patience: t.patience } : {}),
    checkpointEvery: t.checkpointEvery ?? 0,
    byLength: t.groupByLength,
    padId: PHI3_PAD_ID,
    seed: config.seed,
  };
}

/** What else defines the trained weights (part of the checkpoint's config hash: resume checks it). */
function runIdentity(config: CliniloraConfig): Record<string, unknown> {
  return { task: config.task, seed: config.seed, model: config.model, lora: config.lora, data: config.data, firstLineWeight: config.training.firstLineWeight };
}

export async function runTraining(config: CliniloraConfig, opts: RunTrainingOptions = {}): Promise<RunTrainingResult> {
  const t0 = performance.now();
  const log = opts.onProgress ?? (() => {});
  // The base spec is checked before a record exists: a missing base is a config error, not a failed run.
  const base = parseBaseSpec(config.model.base, config.seed);
  const backend = await startBackend(config);
  const run = await openRun({ config: config as unknown as Record<string, unknown>, kind: 'train', name: opts.name, backend: backendSummary(backend), tags: opts.tags });
  log(`run ${run.id} (${run.dir})`);
  log(`backend ${backend.name} (${backend.threads} thread${backend.threads === 1 ? '' : 's'}${backend.simd ? ', simd' : ''})`);
  if (base.kind === 'preset') log(`WARNING: base ${describeBase(base)}`);
  try {
    return await trainInRun(config, run, base, t0, opts, log);
  } catch (e) {
    try {
      run.finish('failed', { error: e });
    } catch {
      // the original error matters more than a failure to record it
    }
    throw e;
  }
}

async function trainInRun(config: CliniloraConfig, run: RunHandle, base: ReturnType<typeof parseBaseSpec>, t0: number, opts: RunTrainingOptions, log: (l: string) => void): Promise<RunTrainingResult> {
  const outDir = config.outDir !== null ? resolve(config.outDir) : run.dir;
  const data = await datasetFor(config, log);
  run.setData(data.manifest, data.dir);
  log(`dataset ${data.dir}: train ${data.manifest.counts.train}, validation ${data.manifest.counts.validation}, test ${data.manifest.counts.test}`);
  const tok = await phi3Tokenizer();
  const enc = (s: Sample) => ({ ...encodeSample(s, tok, { maxLength: config.data.maxLength }), id: s.id });
  const encTrain = (s: Sample) => ({ ...encodeSample(s, tok, { maxLength: config.data.maxLength, firstLineWeight: config.training.firstLineWeight }), id: s.id });
  const trainSamples = limit(data.splits.train, config.data.maxTrainSamples);
  const valSamples = limit(data.splits.validation, config.training.evalSamples);
  const testSamples = limit(config.eval.split === 'test' ? data.splits.test : data.splits.validation, config.eval.n);

  run.setBaseModel(await baseModelInfo(base, config.model.quant));
  const model = loadBase(base, { quant: config.model.quant, doubleQuant: config.model.doubleQuant, int8Threshold: config.model.int8Threshold });
  try {
    log(`base ${describeBase(base)}: ${(model.bytes() / 2 ** 20).toFixed(1)} MiB (${config.model.quant})`);
    let baseEval: TaskEvaluation | null = null;
    let baseEvalMs = 0;
    if (opts.compareBase ?? true) {
      const e0 = performance.now();
      log(`evaluating the base alone on ${testSamples.length} ${config.eval.split} samples`);
      baseEval = evaluateTask(model, tok, testSamples, { config, splits: data.splits, onProgress: (l) => log(`base: ${l}`) });
      baseEvalMs = performance.now() - e0;
      run.logEval({ step: 0, split: `${config.eval.split}:base`, metrics: baseEval.metrics });
      await saveEval(run, outDir, baseEval, 'base');
    }

    const lora = loraConfigOf(config);
    const targets = attachLora(model, lora, new Rng(config.seed).split('lora'));
    log(`LoRA r=${lora.r} alpha=${lora.loraAlpha} on ${targets.length} linears`);
    const tc = trainerConfig(config, trainSamples.length);
    const tr0 = performance.now();
    const summary = await train({
      model,
      loss: answerLoss(model, { gradientCheckpointing: config.training.gradientCheckpointing }),
      train: trainSamples.map(encTrain),
      validation: valSamples.map(enc),
      config: tc,
      runConfig: runIdentity(config),
      checkpointDir: join(outDir, 'checkpoints'),
      ...(opts.resumeFrom !== undefined ? { resumeFrom: resolve(opts.resumeFrom) } : {}),
      progress: opts.progress === false ? false : progressCallbacks({ every: config.training.logEvery }),
      handleSignals: opts.handleSignals ?? true,
      ...(opts.signal !== undefined ? { abortSignal: opts.signal } : {}),
      callbacks: {
        ...opts.callbacks,
        onStepEnd: (s) => {
          run.logStep({ step: s.step, loss: s.loss, lr: s.lr, tokensPerSec: s.tokensPerSec, gradNorm: s.gradNorm, epoch: s.epoch });
          opts.callbacks?.onStepEnd?.(s);
        },
        onEval: (e) => {
          run.logEval({ step: e.step, split: 'validation', metrics: { loss: e.valLoss, perplexity: e.valPerplexity, tokens: e.valTokens } });
          opts.callbacks?.onEval?.(e);
        },
        onCheckpoint: async (c) => {
          for (const f of readdirSync(c.dir).sort()) await run.addArtifact(join(c.dir, f), { kind: 'checkpoint' });
          await opts.callbacks?.onCheckpoint?.(c);
        },
      },
    });
    const trainMs = performance.now() - tr0;
    const trainInfo = {
      status: summary.status, step: summary.step, totalSteps: summary.totalSteps, finalLoss: summary.finalLoss, bestValLoss: summary.bestValLoss,
      bestStep: summary.bestStep, tokens: summary.tokens, elapsedMs: summary.elapsedMs, ...(summary.lastCheckpoint !== undefined ? { lastCheckpoint: summary.lastCheckpoint } : {}),
    };
    const trainMetrics: Record<string, number> = { steps: summary.step, train_tokens: summary.tokens, train_ms: Math.round(trainMs) };
    if (summary.finalLoss !== null && Number.isFinite(summary.finalLoss)) trainMetrics.final_loss = summary.finalLoss;
    if (summary.bestValLoss !== null && Number.isFinite(summary.bestValLoss)) trainMetrics.best_val_loss = summary.bestValLoss;
    if (summary.status === 'interrupted') {
      log(`interrupted at step ${summary.step} (${summary.interruptedBy ?? 'signal'}); checkpoint ${summary.lastCheckpoint ?? 'none'}`);
      run.finish('interrupted', { metrics: trainMetrics });
      return result(run, 'interrupted', null, trainInfo, null, baseEval, { totalMs: performance.now() - t0, trainMs, evalMs: 0, baseEvalMs }, trainMetrics);
    }

    const e0 = performance.now();
    log(`evaluating base + adapter on ${testSamples.length} ${config.eval.split} samples`);
    const adapterEval = evaluateTask(model, tok, testSamples, { config, splits: data.splits, onProgress: (l) => log(`adapter: ${l}`) });
    const evalMs = performance.now() - e0;
    run.logEval({ step: summary.step, split: config.eval.split, metrics: adapterEval.metrics });
    await saveEval(run, outDir, adapterEval, 'adapter');

    const adapterDir = join(outDir, 'adapter');
    saveLoraAdapter(adapterDir, model, lora, { baseModelNameOrPath: base.spec });
    writeAdapterMeta(adapterDir, { task: config.task, base: base.spec, runId: run.id, config, configHash: configHash(config) });
    for (const f of readdirSync(adapterDir).sort()) await run.addArtifact(join(adapterDir, f), { kind: 'adapter' });
    log(`adapter saved: ${adapterDir}`);

    const metrics: Record<string, number> = { ...trainMetrics, ...adapterEval.metrics };
    if (baseEval !== null) for (const [k, v] of Object.entries(baseEval.metrics)) metrics[`base_${k}`] = v;
    const timings = { totalMs: performance.now() - t0, trainMs, evalMs, baseEvalMs };
    metrics.total_ms = Math.round(timings.totalMs);
    run.finish('completed', { metrics });
    return result(run, 'completed', adapterDir, trainInfo, adapterEval, baseEval, timings, metrics);
  } finally {
    model.dispose();
  }
}

function result(
  run: RunHandle, status: FinalStatus, adapterDir: string | null, train: RunTrainingResult['train'], adapterEval: TaskEvaluation | null,
  baseEval: TaskEvaluation | null, timings: RunTrainingResult['timings'], metrics: Record<string, number>,
): RunTrainingResult {
  return { runId: run.id, runDir: run.dir, status, adapterDir, train, adapterEval, baseEval, timings, metrics };
}

/** Writes an evaluation's predictions (JSONL) and full report (JSON) into `dir` as artifacts. */
export async function saveEval(run: RunHandle, dir: string, ev: TaskEvaluation, who: string): Promise<void> {
  const preds = join(dir, `predictions-${ev.split}-${who}.jsonl`);
  writePredictions(preds, ev.predictions);
  await run.addArtifact(preds, { kind: 'predictions' });
  const report = join(dir, `eval-${ev.split}-${who}.json`);
  writeFileAtomic(report, `${JSON.stringify({ task: ev.task, split: ev.split, n: ev.n, metrics: ev.metrics, report: ev.report }, finiteReplacer, 2)}\n`);
  await run.addArtifact(report, { kind: 'eval-report' });
}

function finiteReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}
