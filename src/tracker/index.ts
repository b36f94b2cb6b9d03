/** Run records: one lowdb-written, validated JSON file per run under experiments/runs/<id>/. */
export { gitInfo, gitPatch } from './git.ts';
export { hashFile, hashFiles, openRun, resumeRun, type BackendSummary, type FinishOptions, type OpenRunOptions, type RunHandle } from './run.ts';
export {
  effectiveStatus,
  isStale,
  RUN_KINDS,
  RUN_SCHEMA,
  RUN_SCHEMA_VERSION,
  RUN_STATUSES,
  stepSeries,
  validateRunRecord,
  type Artifact,
  type BaseModelInfo,
  type DataInfo,
  type EnvInfo,
  type EvalEntry,
  type FinalStatus,
  type GitInfo,
  type RunKind,
  type RunRecord,
  type RunStatus,
  type StepMetrics,
} from './schema.ts';
export { listRuns, newRunId, readRun, runFile, runsDir, type RunListing } from './store.ts';
