/** Run records: one lowdb-written, validated JSON file per run under experiments/runs/<id>/. */
export { checkoutRecorded, type Checkout } from './checkout.ts';
export { envInfo, nodeModulesDir, packageInfo } from './env.ts';
export { checkSource, gitInfo, gitPatch, patchFiles, type SourceCheck } from './git.ts';
export { baseModelProducer, envParents, lineageFor, withRunParents, type Parent } from './lineage.ts';
export { hashFile, hashFiles, openRun, resumeRun, type BackendSummary, type FinishOptions, type OpenRunOptions, type RunHandle } from './run.ts';
export {
  effectiveStatus,
  isStale,
  pidAlive,
  RUN_KINDS,
  RUN_SCHEMA,
  RUN_SCHEMA_VERSION,
  RUN_STATUSES,
  STALE_MS,
  staleReason,
  stepSeries,
  upgradeRecord,
  validateRunRecord,
  type Artifact,
  type BaseModelInfo,
  type DataInfo,
  type Difference,
  type EnvInfo,
  type EvalEntry,
  type FinalStatus,
  type GitInfo,
  type ReproductionInfo,
  type RunKind,
  type RunOrigin,
  type RunRecord,
  type RunStatus,
  type StepMetrics,
} from './schema.ts';
export { listRuns, newRunId, readRun, runFile, runsDir, type RunListing } from './store.ts';
export {
  compareManifests,
  compareRecords,
  CROSS_BACKEND_TOLERANCE,
  formatDifference,
  formatVerdict,
  isTimingKey,
  setupChanges,
  type Comparison,
  type Tolerance,
} from './verdict.ts';
