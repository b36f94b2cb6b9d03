/** Safe generation: rules as data, the post-filter, refusal detection, safe generation. */
export { DEFAULT_SAFETY_RULES, NEGATION, type SafetyCategory, type SafetyRule } from './rules.ts';
export {
  SAFE_FALLBACK,
  applySafety,
  compileRules,
  findViolations,
  hasDisclaimerOnce,
  type CompiledRule,
  type SafetyConfig,
  type SafetyResult,
  type SafetyViolation,
} from './filter.ts';
export { detectRefusal, type RefusalCheck } from './refusal.ts';
export { safeGenerate, safeMessages, type ChatTokenizer, type SafeGenerateOptions, type SafeOutput } from './generate.ts';
