/** Human review (the AlpaCare protocol): blinded packets out, Likert scores in, agreement and a verdict recorded. */
export { krippendorffAlpha, type AlphaMetric, type AlphaResult } from './agreement.ts';
export { aggregateReview, reviewMetrics, type ConditionSummary, type ReviewAggregate } from './aggregate.ts';
export { assignItems, type Assignment } from './assign.ts';
export { exportReview, reviewsDir, type ExportedReview, type ExportReviewOptions } from './export.ts';
export { renderForm } from './form.ts';
export { importReview, readReviewKey, type ImportedReview, type ImportReviewOptions } from './import.ts';
export { reviewSources, type AnswerSource, type ReviewSource } from './items.ts';
export { COLUMNS, CRITERIA, SUCCESS, packetRows, type Criterion, type PacketAnswers, type PacketData, type ReviewKey } from './protocol.ts';
export { readFilledPacket, type FilledPacket, type Rating, type Reviewer } from './scores.ts';
export { formatReviewTable } from './table.ts';
