/**
 * What the trainer reports, as plain objects to callbacks (mlx-lm's TrainingCallback habit): the
 * tracker, metrics and progress display are callbacks, never code inside the loop.
 */
export interface StartInfo {
  /** Step the run starts from (0, or the checkpoint's step when resuming). */
  startStep: number;
  totalSteps: number;
  batchesPerEpoch: number;
  configHash: string;
  resumedFrom?: string;
}

export interface StepInfo {
  step: number;
  /** Mean loss of the step's micro-batches (answer tokens only). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Real (non-padding) tokens per second in this step. */
  tokensPerSec: number;
  /** Real tokens seen so far in the run (resumes included). */
  tokens: number;
  /** Wall time of the run so far (resumes included). */
  elapsedMs: number;
  /** Milliseconds this step took. */
  stepMs: number;
  /** Epochs done, with the fraction of the current one. */
  epoch: number;
  totalSteps: number;
}

export interface EvalInfo {
  step: number;
  /** Mean loss over all validation answer tokens. */
  valLoss: number;
  valPerplexity: number;
  /** Validation target tokens. */
  valTokens: number;
  improved: boolean;
  bestValLoss: number;
  bestStep: number;
  /** Evaluations in a row without improvement. */
  badEvals: number;
  evalMs: number;
}

export interface BestInfo {
  step: number;
  valLoss: number;
  /** Copies of the trainable variables at this step, by name. */
  weights: ReadonlyArray<readonly [string, Float32Array, number[]]>;
}

export interface CheckpointInfo {
  step: number;
  dir: string;
}

export interface InterruptInfo {
  step: number;
  /** 'SIGINT', 'SIGTERM' or 'abort'. */
  reason: string;
  /** The checkpoint written for it (absent without a checkpointDir). */
  dir?: string;
}

export type TrainStatus = 'completed' | 'early-stopped' | 'interrupted';

export interface TrainSummary {
  status: TrainStatus;
  step: number;
  totalSteps: number;
  /** Loss of every step of the run, resumed steps included (index = step − 1). */
  losses: number[];
  finalLoss: number | null;
  bestValLoss: number | null;
  bestStep: number | null;
  /** Weights at the best validation loss (when there was a validation split). */
  bestWeights?: ReadonlyArray<readonly [string, Float32Array, number[]]>;
  /** Whether the variables were set back to the best weights at the end. */
  restoredBest: boolean;
  tokens: number;
  elapsedMs: number;
  lastCheckpoint?: string;
  interruptedBy?: string;
}

type Hook<T> = (info: T) => void | Promise<void>;

export interface TrainCallbacks {
  onStart?: Hook<StartInfo>;
  onStepEnd?: Hook<StepInfo>;
  onEval?: Hook<EvalInfo>;
  /** A new best validation loss: save the adapter here (the `saveBest` hook). */
  onBest?: Hook<BestInfo>;
  onCheckpoint?: Hook<CheckpointInfo>;
  onInterrupt?: Hook<InterruptInfo>;
  onEnd?: Hook<TrainSummary>;
}

/** Calls the same hook on every callback set, in order. */
export async function emit<K extends keyof TrainCallbacks>(sets: readonly TrainCallbacks[], key: K, info: Parameters<NonNullable<TrainCallbacks[K]>>[0]): Promise<void> {
  for (const s of sets) {
    const f = s[key] as Hook<typeof info> | undefined;
    if (f !== undefined) await f(info);
  }
}
