/**
 * Named generation presets. A config's `eval.preset` picks one; its values sit between the built-in
 * defaults and the config file, so a file or `--set` can still change any single setting:
 * defaults < preset < file < --set.
 */

export interface GenerationSettings {
  /** Tokens to generate at most. */
  maxNewTokens: number;
  /** 0 = greedy (argmax); otherwise logits / temperature before sampling. */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability sums to topP (1 = off). */
  topP: number;
  /** Keep the topK most likely tokens (0 = off). */
  topK: number;
  /** CTRL-style penalty on tokens already present (1 = off). */
  repetitionPenalty: number;
}

export const GENERATION_PRESETS = {
  /** Deterministic argmax decoding: what the evaluations use by default. */
  greedy: { maxNewTokens: 256, temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1 },
  /** The seed auditor's sampling settings (issue 4). */
  'auditor-seed': { maxNewTokens: 400, temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1.2 },
} as const satisfies Record<string, GenerationSettings>;

export type GenerationPresetName = keyof typeof GENERATION_PRESETS;
export const GENERATION_PRESET_NAMES = Object.keys(GENERATION_PRESETS) as GenerationPresetName[];
