/** Evaluation: metrics, task evaluators, numbers read from token probabilities, predictions files. */
export { classificationReport, UNPARSEABLE, type ClassificationReport, type ClassMetrics, type Averages, type ConfusionMatrix } from './classification.ts';
export { expectedCalibrationError, brierScore, reliabilityCurve, binIndex, type ReliabilityBin } from './calibration.ts';
export { perplexity, summariseFaithfulness, type FaithfulnessSummary } from './text-metrics.ts';
export { missingItemScores, type MissingItemScores } from './missing.ts';
export { safetyRates, evaluateSafety, type SafetyRates, type SafetyOutputRow, type SafetyEvaluation } from './safety-rates.ts';
export { evaluateAuditor, type AuditorPrediction, type AuditorRow, type AuditorEvaluation } from './auditor.ts';
export { evaluateHeart, probabilityMetrics, type HeartPrediction, type HeartEvalOptions, type HeartEvaluation, type ProbabilityMetrics } from './heart.ts';
export { riskProbabilityFromModel, answerNlls, RISK_LEVELS, type RiskReading, type EncodingTokenizer } from './model-probs.ts';
export { writePredictions, readPredictions } from './predictions.ts';
export { rocAuc, bootstrapAuc, fitLogistic, predictProba, type AucInterval, type LogisticModel } from './logistic.ts';
