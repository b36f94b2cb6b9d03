/** Public API of the trainer. */
export { encodeSample, collate, planBatches, makeBatches, type EncodeSampleOptions, type EncodedSample, type Batch, type PlanOptions, type MakeBatchesOptions } from './batching.ts';
export { AdamW, clipGradNorm, type AdamWConfig, type NamedVariable } from './optimizer.ts';
export { lrAt, warmupSteps, type ScheduleConfig } from './schedule.ts';
export { train, resume, answerLoss, namedLoraVariables, type TrainConfig, type TrainOptions, type LossFn } from './trainer.ts';
export {
  configHash, checkpointName, latestCheckpoint, readCheckpointState, writeCheckpoint, saveVariables, readVariables,
  CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type TrainState,
} from './checkpoint.ts';
export { progressCallbacks, formatDuration, type ProgressOptions, type ProgressStream } from './progress.ts';
export type {
  TrainCallbacks, StartInfo, StepInfo, EvalInfo, BestInfo, CheckpointInfo, InterruptInfo, TrainStatus, TrainSummary,
} from './callbacks.ts';
