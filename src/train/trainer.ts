/**
 * The training loop, mlx-lm style: the model, its trainable variables, the data, the loss and the
 * optimizer config come in as arguments; everything it reports goes out through callbacks.
 *
 * One step = `gradAccumulation` micro-batches (gradients averaged), global-norm clipping, one AdamW
 * update at the scheduled lr. Every `evalEvery` steps the validation loss (mean over answer tokens)
 * feeds early stopping; every `checkpointEvery` steps a checkpoint is written. SIGINT/SIGTERM (or an
 * AbortSignal) finish the current step, write a checkpoint and resolve with status 'interrupted'.
 * A resumed run reproduces the never-stopped run's losses exactly: every random stream, the data
 * position and the optimizer state are in the checkpoint, and nothing else is random.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import { Rng } from '../util/random.ts';
import type { LinearContainer } from '../model/linear-container.ts';
import { loraLayers, setLoraTraining } from '../model/lora/model.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { collate, planBatches, type Batch, type EncodedSample } from './batching.ts';
import { emit, type TrainCallbacks, type TrainStatus, type TrainSummary } from './callbacks.ts';
import { checkpointName, configHash, pruneCheckpoints, readCheckpointState, readVariables, writeCheckpoint, type TrainState, CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from './checkpoint.ts';
import { AdamW, clipGradNorm, type NamedVariable } from './optimizer.ts';
import { progressCallbacks } from './progress.ts';
import { lrAt } from './schedule.ts';

export interface TrainConfig {
  /** Samples per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccumulation?: number;
  /** Passes over the training split (used when maxSteps is absent; default 1). */
  epochs?: number;
  /** Optimizer steps; wins over epochs. */
  maxSteps?: number;
  lr: number;
  schedule?: 'linear' | 'cosine' | 'constant';
  warmupRatio?: number;
  minLr?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  /** Global gradient-norm clip; 0 = off (default 1.0). */
  maxGradNorm?: number;
  /** Evaluate every N steps (and at the last step); 0 = only at the end. Default 0. */
  evalEvery?: number;
  evalBatchSize?: number;
  /** Stop after this many evaluations in a row without improvement (absent = never). */
  patience?: number;
  /** Improvement needed to count as better (default 0). */
  minDelta?: number;
  /** Checkpoint every N steps (0 = only on interrupt and at the end, when checkpointDir is set). */
  checkpointEvery?: number;
  /** Keep the newest N checkpoints (default all). */
  keepCheckpoints?: number;
  /** Batches grouped by length (default true). */
  byLength?: boolean;
  /** Padding id (Phi-3: 32000). */
  padId: number;
  /** Seeds the shuffle and dropout streams. */
  seed: number;
}

/** Loss of one batch: a scalar mean over its target tokens. */
export type LossFn = (batch: Batch, ctx: { training: boolean; rng: Rng }) => tf.Scalar;

/** The answer-token loss of a Phi-3 model (model.lossFromIds with the batch's masks). */
export function answerLoss(model: Pick<Phi3ForCausalLM, 'lossFromIds'>, opts: { logitsAt?: 'targets' | 'all'; chunkRows?: number; gradientCheckpointing?: boolean } = {}): LossFn {
  return (b, ctx) =>
    model.lossFromIds({ data: b.ids, shape: [b.B, b.T] }, { data: b.labels, shape: [b.B, b.T] }, {
      attentionMask: { data: b.attentionMask, shape: [b.B, b.T] },
      ...(b.labelWeights !== undefined ? { labelWeights: b.labelWeights } : {}),
      training: ctx.training,
      rng: ctx.rng,
      ...opts,
    });
}

/** Named adapter variables: `<module>.lora_A` / `<module>.lora_B`, in model order. */
export function namedLoraVariables(model: LinearContainer): NamedVariable[] {
  return loraLayers(model).flatMap(([name, l]) => [[`${name}.lora_A`, l.loraA] as const, [`${name}.lora_B`, l.loraB] as const]);
}

export interface TrainOptions {
  model: LinearContainer & Partial<Pick<Phi3ForCausalLM, 'lossFromIds' | 'trainableVariables'>>;
  /** Default: the LoRA adapters when attached, else model.trainableVariables(). */
  variables?: readonly NamedVariable[] | readonly tf.Variable[];
  train: readonly EncodedSample[];
  validation?: readonly EncodedSample[];
  /** Default: answerLoss(model). */
  loss?: LossFn;
  config: TrainConfig;
  /** Anything else that defines the run (model, LoRA, data config): part of the config hash. */
  runConfig?: unknown;
  /** Where checkpoints go (`<dir>/step-0000100`). */
  checkpointDir?: string;
  /** A checkpoint directory to continue from. */
  resumeFrom?: string;
  callbacks?: TrainCallbacks | readonly TrainCallbacks[];
  /** Progress display: true (default) = progressCallbacks(); false = none; or your own. */
  progress?: boolean | TrainCallbacks;
  /** Handle SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  /** Aborting it interrupts like a signal does. */
  abortSignal?: AbortSignal;
  /** At the end (not on interrupt) set the variables back to the best validation weights (default true). */
  restoreBest?: boolean;
}

function named(vars: readonly NamedVariable[] | readonly tf.Variable[]): NamedVariable[] {
  return vars.map((v, i) => (v instanceof tf.Variable ? ([`param.${i}`, v] as const) : (v as NamedVariable)));
}

function fingerprint(samples: readonly EncodedSample[] | undefined): string {
  const h = createHash('sha256');
  for (const s of samples ?? []) {
    h.update(new Uint8Array(s.ids.buffer, s.ids.byteOffset, s.ids.byteLength));
    h.update(s.labels);
    h.update('|');
  }
  return h.digest('hex').slice(0, 16);
}

const snapshot = (vars: readonly NamedVariable[]): Array<readonly [string, Float32Array, number[]]> =>
  vars.map(([n, v]) => [n, new Float32Array(v.dataSync()), [...v.shape]] as const);

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export async function train(opts: TrainOptions): Promise<TrainSummary> {
  const c = opts.config;
  const model = opts.model;
  const vars = named(opts.variables ?? (loraLayers(model).length > 0 ? namedLoraVariables(model) : (model.trainableVariables?.() ?? [])));
  if (vars.length === 0) throw new CliniloraError('E_ARG', 'nothing to train: no trainable variables', { field: 'variables', hint: 'attach LoRA or build the model with trainable: true' });
  if (opts.train.length === 0) throw new CliniloraError('E_ARG', 'the training split is empty', { field: 'train' });
  const lossFn = opts.loss ?? (model.lossFromIds !== undefined ? answerLoss(model as Pick<Phi3ForCausalLM, 'lossFromIds'>) : undefined);
  if (lossFn === undefined) throw new CliniloraError('E_ARG', 'no loss function and the model has no lossFromIds', { field: 'loss' });
  const accum = c.gradAccumulation ?? 1;
  const lengths = opts.train.map((e) => e.ids.length);
  const batchesPerEpoch = Math.ceil(opts.train.length / c.batchSize);
  const totalSteps = c.maxSteps ?? Math.max(1, Math.floor(((c.epochs ?? 1) * batchesPerEpoch) / accum));
  const sched = { lr: c.lr, schedule: c.schedule ?? 'linear', warmupRatio: c.warmupRatio ?? 0, minLr: c.minLr, totalSteps } as const;
  const { checkpointEvery: _ce, keepCheckpoints: _kc, ...hashed } = c;
  const hash = configHash({ train: hashed, run: opts.runConfig ?? null, data: [fingerprint(opts.train), fingerprint(opts.validation)], variables: vars.map(([n, v]) => [n, v.shape]) });

  const root = new Rng(c.seed);
  let shuffleRng = root.split('shuffle');
  let dropoutRng = root.split('dropout');
  const lora = loraLayers(model);
  const setTraining = (t: boolean): void => setLoraTraining(model, t);
  const optimizer = new AdamW(vars, { betas: c.betas, eps: c.eps, weightDecay: c.weightDecay });

  let state: TrainState = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step: 0, configHash: hash, epoch: 0, batchIndex: 0, epochPlan: null,
    rng: {}, early: { bestValLoss: null, bestStep: null, badEvals: 0 }, tokensSeen: 0, elapsedMs: 0, losses: [],
  };
  let best: Array<readonly [string, Float32Array, number[]]> | undefined;
  try {
    if (opts.resumeFrom !== undefined) {
      // Read and check everything before changing anything.
      const dir = opts.resumeFrom;
      const s = readCheckpointState(dir, hash);
      const weights = readVariables(join(dir, 'trainable.safetensors'), vars);
      const missing = ['shuffle', 'dropout', ...lora.map(([n]) => `lora:${n}`)].filter((k) => s.rng[k] === undefined);
      if (missing.length > 0) throw new CliniloraError('E_FORMAT', `checkpoint lacks random-stream states: ${missing.join(', ')}`, { file: join(dir, 'state.json'), field: 'rng' });
      const bestPath = join(dir, 'best.safetensors');
      const bestData = existsSync(bestPath) ? readVariables(bestPath, vars) : undefined;
      optimizer.load(join(dir, 'optimizer.safetensors'));
      tf.tidy(() => vars.forEach(([, v], i) => v.assign(tf.tensor(weights[i]!, v.shape))));
      best = bestData?.map((d, i) => [vars[i]![0], d, [...vars[i]![1].shape]] as const);
      shuffleRng = new Rng(s.rng['shuffle']!);
      dropoutRng = new Rng(s.rng['dropout']!);
      for (const [n, l] of lora) l.setDropoutState(s.rng[`lora:${n}`]!);
      state = s;
    }
  } catch (e) {
    optimizer.dispose();
    throw e;
  }

  const sets: TrainCallbacks[] = [];
  if (opts.progress !== false) sets.push(opts.progress === true || opts.progress === undefined ? progressCallbacks() : opts.progress);
  if (opts.callbacks !== undefined) sets.push(...(Array.isArray(opts.callbacks) ? opts.callbacks : [opts.callbacks as TrainCallbacks]));

  let interruptedBy: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => { interruptedBy ??= sig; };
  const handle = opts.handleSignals ?? true;
  if (handle) { process.once('SIGINT', onSignal); process.once('SIGTERM', onSignal); }

  const valBatches = (opts.validation ?? []).length > 0
    ? planBatches(opts.validation!.map((e) => e.ids.length), { batchSize: c.evalBatchSize ?? c.batchSize }).map((ix) => collate(opts.validation!, ix, c.padId))
    : [];
  const sessionStart = performance.now();
  const priorMs = state.elapsedMs; // wall time of the run before this session (resumes)
  const elapsed = (): number => priorMs + (performance.now() - sessionStart);
  let lastCheckpoint: string | undefined;
  let status: TrainStatus = 'completed';

  const nextBatch = (): Batch => {
    if (state.epochPlan === null || state.batchIndex >= state.epochPlan.length) {
      if (state.epochPlan !== null) state.epoch += 1;
      state.epochPlan = planBatches(lengths, { batchSize: c.batchSize, rng: shuffleRng, byLength: c.byLength ?? true });
      state.batchIndex = 0;
    }
    return collate(opts.train, state.epochPlan[state.batchIndex++]!, c.padId);
  };

  const evaluate = (): { loss: number; targets: number } => {
    setTraining(false);
    let sum = 0;
    let n = 0;
    for (const b of valBatches) {
      const l = tf.tidy(() => lossFn(b, { training: false, rng: dropoutRng }));
      sum += l.dataSync()[0]! * b.targets;
      n += b.targets;
      l.dispose();
    }
    return { loss: sum / n, targets: n };
  };

  const checkpoint = async (): Promise<string | undefined> => {
    if (opts.checkpointDir === undefined) return undefined;
    const dir = join(opts.checkpointDir, checkpointName(state.step));
    state.rng = { shuffle: shuffleRng.state(), dropout: dropoutRng.state() };
    for (const [n, l] of lora) state.rng[`lora:${n}`] = l.dropoutState();
    writeCheckpoint(dir, { state: { ...state, elapsedMs: elapsed() }, variables: vars, optimizer, best });
    if (c.keepCheckpoints !== undefined) pruneCheckpoints(opts.checkpointDir, c.keepCheckpoints);
    lastCheckpoint = dir;
    await emit(sets, 'onCheckpoint', { step: state.step, dir });
    return dir;
  };

  try {
    await emit(sets, 'onStart', { startStep: state.step, totalSteps, batchesPerEpoch, configHash: hash, ...(opts.resumeFrom !== undefined ? { resumedFrom: opts.resumeFrom } : {}) });
    while (state.step < totalSteps) {
      const t0 = performance.now();
      setTraining(true);
      let acc: tf.Tensor[] | undefined;
      let lossSum = 0;
      let stepTokens = 0;
      for (let k = 0; k < accum; k++) {
        const batch = nextBatch();
        const { value, grads } = tf.variableGrads(() => lossFn(batch, { training: true, rng: dropoutRng }), vars.map(([, v]) => v));
        lossSum += value.dataSync()[0]!;
        value.dispose();
        const g = vars.map(([, v]) => grads[v.name]!);
        if (acc === undefined) acc = g;
        else {
          const prev: tf.Tensor[] = acc;
          acc = prev.map((a, i) => tf.add(a, g[i]!));
          for (const t of [...prev, ...g]) t.dispose();
        }
        stepTokens += batch.tokens;
        await tick(); // lets a signal arrive; the step still completes
      }
      let grads: tf.Tensor[] = acc!;
      if (accum > 1) {
        const summed = grads;
        grads = summed.map((g) => tf.mul(g, 1 / accum));
        for (const g of summed) g.dispose();
      }
      const clipped = clipGradNorm(grads, c.maxGradNorm ?? 1.0);
      const lr = lrAt(state.step, sched);
      optimizer.apply(clipped.grads, lr);
      for (const g of clipped.grads) g.dispose();
      state.step += 1;
      const loss = lossSum / accum;
      state.losses.push(loss);
      state.tokensSeen += stepTokens;
      const stepMs = performance.now() - t0;
      await emit(sets, 'onStepEnd', {
        step: state.step, loss, lr, gradNorm: clipped.norm, tokensPerSec: (stepTokens * 1000) / stepMs, tokens: state.tokensSeen,
        elapsedMs: elapsed(), stepMs, epoch: state.epoch + state.batchIndex / (state.epochPlan?.length ?? 1), totalSteps,
      });

      const last = state.step === totalSteps;
      if (valBatches.length > 0 && (last || ((c.evalEvery ?? 0) > 0 && state.step % c.evalEvery! === 0))) {
        const e0 = performance.now();
        const { loss: valLoss, targets } = evaluate();
        const early = state.early;
        const improved = early.bestValLoss === null || valLoss < early.bestValLoss - (c.minDelta ?? 0);
        if (improved) {
          early.bestValLoss = valLoss;
          early.bestStep = state.step;
          early.badEvals = 0;
          best = snapshot(vars);
        } else early.badEvals += 1;
        await emit(sets, 'onEval', {
          step: state.step, valLoss, valPerplexity: Math.exp(valLoss), valTokens: targets, improved,
          bestValLoss: early.bestValLoss!, bestStep: early.bestStep!, badEvals: early.badEvals, evalMs: performance.now() - e0,
        });
        if (improved) await emit(sets, 'onBest', { step: state.step, valLoss, weights: best! });
        if (c.patience !== undefined && early.badEvals >= c.patience) status = 'early-stopped';
      }
      if (status === 'early-stopped' || last) {
        await checkpoint();
        break;
      }
      if (opts.abortSignal?.aborted === true) interruptedBy ??= 'abort';
      if (interruptedBy !== undefined) {
        status = 'interrupted';
        const dir = await checkpoint();
        await emit(sets, 'onInterrupt', { step: state.step, reason: interruptedBy, ...(dir !== undefined ? { dir } : {}) });
        break;
      }
      if ((c.checkpointEvery ?? 0) > 0 && state.step % c.checkpointEvery! === 0) await checkpoint();
    }
  } finally {
    setTraining(false);
    if (handle) { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); }
    optimizer.dispose();
  }

  let restoredBest = false;
  if (status !== 'interrupted' && best !== undefined && (opts.restoreBest ?? true)) {
    tf.tidy(() => vars.forEach(([, v], i) => v.assign(tf.tensor(best![i]![1], v.shape))));
    restoredBest = true;
  }
  const summary: TrainSummary = {
    status, step: state.step, totalSteps, losses: state.losses, finalLoss: state.losses[state.losses.length - 1] ?? null,
    bestValLoss: state.early.bestValLoss, bestStep: state.early.bestStep, restoredBest, tokens: state.tokensSeen, elapsedMs: elapsed(),
    ...(best !== undefined ? { bestWeights: best } : {}),
    ...(lastCheckpoint !== undefined ? { lastCheckpoint } : {}),
    ...(interruptedBy !== undefined ? { interruptedBy } : {}),
  };
  await emit(sets, 'onEnd', summary);
  return summary;
}

/** Continues the run whose checkpoint is `dir` (same options as the original run). */
export function resume(dir: string, opts: Omit<TrainOptions, 'resumeFrom'>): Promise<TrainSummary> {
  return train({ ...opts, resumeFrom: dir });
}
