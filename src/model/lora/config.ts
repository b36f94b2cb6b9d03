/**
 * LoRA configuration with PEFT's vocabulary (camelCase here, snake_case on disk — src/io/peft.ts
 * converts). `scaling` is never stored: it is derived from loraAlpha and r (PEFT: lora_alpha / r, or
 * lora_alpha / √r with use_rslora), per module when rankPattern / alphaPattern override r or alpha.
 * A `PeftLoraConfig` from src/io/peft.ts is structurally a `LoraConfig` and can be passed as is.
 */
import { CliniloraError } from '../../errors.ts';

export interface LoraConfig {
  /** Rank of every adapter unless `rankPattern` overrides it (PEFT `r`, default 8). */
  r: number;
  /** Numerator of the scaling (PEFT `lora_alpha`, default 8). */
  loraAlpha: number;
  /** Dropout probability on the adapter's input (PEFT `lora_dropout`, default 0). */
  loraDropout: number;
  /**
   * Module names or suffixes to adapt (PEFT `target_modules`): a linear named `k` is adapted when
   * `k === t` or `k` ends with `.${t}`, e.g. 'qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'.
   * 'all-linear' selects every linear except `lm_head`.
   */
  targetModules: string[];
  /** When set, replaces targetModules: a module is adapted when the regex matches its whole name. */
  targetModulesRegex?: string;
  /** rsLoRA: scaling = loraAlpha / √r. */
  useRslora: boolean;
  /** Per-module rank overrides; a key matches a module name suffix (PEFT's `(.*\.)?key$`). */
  rankPattern?: Record<string, number>;
  /** Per-module alpha overrides, matched like rankPattern. */
  alphaPattern?: Record<string, number>;
  /** true: A kaiming-uniform, B = 0 (an identity adapter); false: B random too; 'gaussian': A ~ N(0, 1/r). */
  initLoraWeights?: boolean | string;
  /** Not supported (must be false). */
  useDora?: boolean;
  /** Only 'none' is supported: our linears have no bias. */
  bias?: string;
  /** Not supported (must be false): HF stores Phi-3 weights as [out, in]. */
  fanInFanOut?: boolean;
}

/** PEFT's defaults, with Phi-3's usual attention targets. */
export const LORA_DEFAULTS: Readonly<LoraConfig> = {
  r: 8,
  loraAlpha: 8,
  loraDropout: 0,
  targetModules: ['qkv_proj', 'o_proj'],
  useRslora: false,
  initLoraWeights: true,
  useDora: false,
  bias: 'none',
  fanInFanOut: false,
};

/** A validated config from partial fields over LORA_DEFAULTS. */
export function defineLoraConfig(init: Partial<LoraConfig> = {}): LoraConfig {
  const c: LoraConfig = { ...LORA_DEFAULTS, ...init, targetModules: [...(init.targetModules ?? LORA_DEFAULTS.targetModules)] };
  validateLoraConfig(c);
  return c;
}

/** Checks every field; collects all problems into one error. */
export function validateLoraConfig(c: LoraConfig): void {
  const problems: string[] = [];
  const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!posInt(c.r)) problems.push(`r must be a positive integer (found ${String(c.r)})`);
  if (typeof c.loraAlpha !== 'number' || !(c.loraAlpha > 0) || !Number.isFinite(c.loraAlpha)) problems.push(`loraAlpha must be a positive number (found ${String(c.loraAlpha)})`);
  if (typeof c.loraDropout !== 'number' || !(c.loraDropout >= 0 && c.loraDropout < 1)) problems.push(`loraDropout must be in [0, 1) (found ${String(c.loraDropout)})`);
  if (c.targetModulesRegex === undefined && (!Array.isArray(c.targetModules) || c.targetModules.length === 0)) problems.push('targetModules must name at least one module');
  if (c.targetModulesRegex !== undefined) {
    try {
      new RegExp(c.targetModulesRegex);
    } catch {
      problems.push(`targetModulesRegex is not a valid regular expression (${c.targetModulesRegex})`);
    }
  }
  for (const [k, v] of Object.entries(c.rankPattern ?? {})) if (!posInt(v)) problems.push(`rankPattern['${k}'] must be a positive integer (found ${String(v)})`);
  for (const [k, v] of Object.entries(c.alphaPattern ?? {})) if (typeof v !== 'number' || !(v > 0)) problems.push(`alphaPattern['${k}'] must be a positive number (found ${String(v)})`);
  const init = c.initLoraWeights ?? true;
  if (init !== true && init !== false && init !== 'gaussian') problems.push(`initLoraWeights '${String(init)}' is not supported (true, false or 'gaussian')`);
  if (c.useDora === true) problems.push('useDora is not supported');
  if ((c.bias ?? 'none') !== 'none') problems.push(`bias '${c.bias}' is not supported (only 'none')`);
  if (c.fanInFanOut === true) problems.push('fanInFanOut is not supported (weights are [out, in])');
  if (problems.length > 0) {
    throw new CliniloraError('E_CONFIG', `invalid LoRA config: ${problems.join('; ')}`, { field: 'lora' });
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** PEFT's pattern lookup: the first key k (a regex) with `(.*\.)?k$` matching the module name. */
function patternValue(pattern: Record<string, number> | undefined, moduleName: string): number | undefined {
  if (pattern === undefined) return undefined;
  for (const [key, value] of Object.entries(pattern)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(moduleName)) return value;
  }
  return undefined;
}

/** Rank of the adapter on `moduleName` (rankPattern, else r). */
export function loraRank(c: LoraConfig, moduleName = ''): number {
  return patternValue(c.rankPattern, moduleName) ?? c.r;
}

/** Alpha of the adapter on `moduleName` (alphaPattern, else loraAlpha). */
export function loraAlphaFor(c: LoraConfig, moduleName = ''): number {
  return patternValue(c.alphaPattern, moduleName) ?? c.loraAlpha;
}

/** scaling = alpha / r, or alpha / √r with rsLoRA (PEFT `LoraLayer.update_layer`). */
export function loraScaling(c: LoraConfig, moduleName = ''): number {
  const r = loraRank(c, moduleName);
  const alpha = loraAlphaFor(c, moduleName);
  return c.useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** PEFT's `check_target_module_exists` for one module name. */
export function isTargetModule(c: LoraConfig, moduleName: string): boolean {
  if (c.targetModulesRegex !== undefined) return new RegExp(`^(?:${c.targetModulesRegex})$`).test(moduleName);
  return c.targetModules.some((t) => targetMatches(t, moduleName));
}

function targetMatches(t: string, moduleName: string): boolean {
  if (t === 'all-linear') return moduleName !== 'lm_head' && !moduleName.endsWith('.lm_head');
  return moduleName === t || new RegExp(`\\.${escapeRegex(t)}$`).test(moduleName);
}

/**
 * The module names to adapt, in the given order. A target that matches nothing is an error that lists
 * every such target and the module suffixes that exist (all at once).
 */
export function selectTargets(c: LoraConfig, moduleNames: readonly string[]): string[] {
  validateLoraConfig(c);
  const selected = moduleNames.filter((n) => isTargetModule(c, n));
  const unknown =
    c.targetModulesRegex !== undefined
      ? selected.length === 0
        ? [c.targetModulesRegex]
        : []
      : c.targetModules.filter((t) => !moduleNames.some((n) => targetMatches(t, n)));
  if (unknown.length > 0) {
    const suffixes = [...new Set(moduleNames.map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort();
    throw new CliniloraError('E_CONFIG', `LoRA target module(s) ${unknown.map((t) => `'${t}'`).join(', ')} match no linear layer`, {
      field: 'targetModules',
      expected: `names or suffixes of linear modules: ${suffixes.join(', ')}`,
      found: JSON.stringify(c.targetModulesRegex ?? c.targetModules),
      hint: "Phi-3 uses fused 'qkv_proj' and 'gate_up_proj'; 'all-linear' selects every linear except lm_head",
    });
  }
  return selected;
}
