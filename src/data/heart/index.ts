/** The heart-risk task: UCI heart failure records → narratives → risk assessments. */
export {
  CLINICAL_FEATURES,
  HEART_COLUMNS,
  HEART_CSV_PATH,
  HEART_SCHEMA,
  loadHeartRecords,
  parseHeartCsv,
  type HeartColumn,
  type HeartFeature,
  type HeartRecord,
} from './records.ts';
export { FEATURE_NAMES, creatinineUpperLimit, readingOf, type Reading } from './clinical.ts';
export { heartNarrative, type Narrative, type NarrativeStyle } from './narrative.ts';
export {
  MISSING_WARNING,
  RISK_THRESHOLDS,
  formatRiskAnswer,
  parseRiskAnswer,
  riskLevel,
  type ParsedRiskAnswer,
  type RiskAnswer,
  type RiskLevel,
} from './answer.ts';
export {
  HEART_DEFAULT_RATIOS,
  HEART_USER_INSTRUCTION,
  buildHeartDataset,
  heartMeta,
  heartSystemPrompt,
  patientSource,
  riskModelInput,
  type HeartBuildOptions,
  type HeartDataset,
  type HeartMeta,
} from './build.ts';
export { heartBaseline, heartBaselineRepeated, type HeartBaseline, type HeartBaselineOptions, type RepeatedBaseline } from './baseline.ts';
