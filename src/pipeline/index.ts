/** The end-to-end pipeline: training runs, evaluation runs, model loading for the CLI. */
export { PRESET_KEYS, PRESET_PREFIX, describeBase, isPresetSpec, loadBase, parseBaseSpec, resolveBaseDir, type BaseLoadOptions, type BaseSpec } from './base.ts';
export { evaluateTask, generateBatched, generationOptions, safetyConfig, type BatchGeneration, type EvaluateOptions, type TaskEvaluation } from './evaluate.ts';
export {
  ADAPTER_META_FILE, adapterBaseSpec, backendSummary, datasetFor, datasetOptions, loadModel, loraConfigOf, readAdapterMeta, resolveAdapter, startBackend, writeAdapterMeta,
  type AdapterMeta, type LoadedModel, type ResolvedAdapter,
} from './resources.ts';
export { runTraining, trainerConfig, type RunTrainingOptions, type RunTrainingResult } from './train.ts';
export { runEvaluation, type RunEvaluationOptions, type RunEvaluationResult } from './eval-run.ts';
export { summaryTable, timingLine, SUMMARY_METRICS } from './summary.ts';
