/** The AlpaCare task: safe medical instructions, with the safety prefix, disclaimer and adversarial set. */
export { DISCLAIMER, SAFETY_SYSTEM_PREFIX, countDisclaimers, endsWithDisclaimer, withDisclaimer } from './safety.ts';
export {
  DROP_REASONS,
  estimateTokensByChars,
  loadMedInstruct,
  looksTruncated,
  trimToLastSentence,
  type CleanRecord,
  type CleaningStats,
  type DropReason,
  type MedInstructOptions,
} from './medinstruct.ts';
export {
  ADVERSARIAL_CATEGORIES,
  ADVERSARIAL_PATH,
  ADVERSARIAL_TACTICS,
  adversarialSlice,
  assertNoAdversarialInSplits,
  loadAdversarialSet,
  type AdversarialCategory,
  type AdversarialPrompt,
  type AdversarialTactic,
} from './adversarial.ts';
export {
  ALPACARE_BUILTIN,
  ALPACARE_DEFAULT_RATIOS,
  ALPACARE_DEMO_COUNTS,
  buildAlpacareDataset,
  type AlpacareBuildOptions,
  type AlpacareDataset,
} from './build.ts';
