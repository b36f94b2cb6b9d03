/**
 * PEFT LoRA adapter directories, the files `PeftModel.save_pretrained` writes and
 * `PeftModel.from_pretrained` reads: `adapter_config.json` (snake_case, keys sorted) and
 * `adapter_model.safetensors` (metadata {"format": "pt"}, keys
 * `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]).
 * The API is camelCase; names are converted here and nowhere else.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { writeDirAtomic, writeFileAtomic } from '../util/atomic.ts';
import { readJsonFile, stableJson } from './hf-checkpoint.ts';
import { openSafetensors, writeSafetensors } from './safetensors.ts';
import type { RawTensor } from './tensor.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
const KEY_PREFIX = 'base_model.model.';

export interface PeftLoraConfig {
  /** Rank of every adapter unless `rankPattern` overrides it for a module. */
  r: number;
  /** scaling = loraAlpha / r (or loraAlpha / √r with useRslora). */
  loraAlpha: number;
  loraDropout: number;
  /** Module name suffixes that get adapters, e.g. ['qkv_proj', 'o_proj']. */
  targetModules: string[];
  /** Set when adapter_config.json gave target_modules as one regex string instead of a list. */
  targetModulesRegex?: string;
  useRslora: boolean;
  baseModelNameOrPath: string | null;
  taskType: string;
  bias: 'none' | 'all' | 'lora_only';
  fanInFanOut: boolean;
  useDora: boolean;
  modulesToSave: string[] | null;
  inferenceMode: boolean;
  initLoraWeights: boolean | string;
  layersToTransform: number[] | number | null;
  layersPattern: string | string[] | null;
  /** Per-module rank overrides; keys match a module name suffix (PEFT's `(.*\.)?key$`). */
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  revision: string | null;
  /** adapter_config.json keys we do not model, kept so a load/save round trip preserves them. */
  extra?: Record<string, unknown>;
}

export interface LoraPair {
  /** [r, in] */
  loraA: RawTensor;
  /** [out, r] */
  loraB: RawTensor;
}

/** A config with PEFT's defaults for everything not given. */
export function defaultPeftLoraConfig(init: Partial<PeftLoraConfig> & Pick<PeftLoraConfig, 'r' | 'targetModules'>): PeftLoraConfig {
  return {
    loraAlpha: 8,
    loraDropout: 0,
    useRslora: false,
    baseModelNameOrPath: null,
    taskType: 'CAUSAL_LM',
    bias: 'none',
    fanInFanOut: false,
    useDora: false,
    modulesToSave: null,
    inferenceMode: true,
    initLoraWeights: true,
    layersToTransform: null,
    layersPattern: null,
    rankPattern: {},
    alphaPattern: {},
    revision: null,
    ...init,
  };
}

/** camelCase field ↔ snake_case key, for the fields we model. */
const FIELDS: ReadonlyArray<readonly [keyof PeftLoraConfig, string]> = [
  ['r', 'r'],
  ['loraAlpha', 'lora_alpha'],
  ['loraDropout', 'lora_dropout'],
  ['targetModules', 'target_modules'],
  ['useRslora', 'use_rslora'],
  ['baseModelNameOrPath', 'base_model_name_or_path'],
  ['taskType', 'task_type'],
  ['bias', 'bias'],
  ['fanInFanOut', 'fan_in_fan_out'],
  ['useDora', 'use_dora'],
  ['modulesToSave', 'modules_to_save'],
  ['inferenceMode', 'inference_mode'],
  ['initLoraWeights', 'init_lora_weights'],
  ['layersToTransform', 'layers_to_transform'],
  ['layersPattern', 'layers_pattern'],
  ['rankPattern', 'rank_pattern'],
  ['alphaPattern', 'alpha_pattern'],
  ['revision', 'revision'],
];

/** Keys PEFT (0.10–0.13) writes that we carry with their default values. */
const PEFT_DEFAULT_KEYS: Record<string, unknown> = {
  auto_mapping: null,
  layer_replication: null,
  loftq_config: {},
  megatron_config: null,
  megatron_core: 'megatron.core',
};

/** The adapter_config.json object for a config (snake_case, PEFT's keys). */
export function peftConfigToJson(config: PeftLoraConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...PEFT_DEFAULT_KEYS, ...(config.extra ?? {}), peft_type: 'LORA' };
  for (const [camel, snake] of FIELDS) out[snake] = config[camel];
  if (config.targetModulesRegex !== undefined) out['target_modules'] = config.targetModulesRegex;
  return out;
}

/** Parses adapter_config.json contents; collects every problem and throws once. */
export function peftConfigFromJson(json: unknown, file = ADAPTER_CONFIG_FILE): PeftLoraConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CliniloraError('E_FORMAT', 'adapter config must be a JSON object', { file });
  }
  const j = json as Record<string, unknown>;
  const problems: string[] = [];
  const need = (ok: boolean, key: string, what: string) => {
    if (!ok) problems.push(`'${key}' must be ${what}, found ${JSON.stringify(j[key])}`);
  };
  if (j['peft_type'] !== 'LORA') {
    throw new CliniloraError('E_UNSUPPORTED', 'only LoRA adapters are supported', { file, field: 'peft_type', expected: '"LORA"', found: JSON.stringify(j['peft_type']) });
  }
  const isStrList = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');
  const isNumMap = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'number');
  const r = j['r'];
  need(typeof r === 'number' && Number.isInteger(r) && r > 0, 'r', 'a positive integer');
  need(typeof j['lora_alpha'] === 'number', 'lora_alpha', 'a number');
  const tm = j['target_modules'];
  need(isStrList(tm) || typeof tm === 'string', 'target_modules', 'a list of module names or a regex string');
  need(j['lora_dropout'] === undefined || typeof j['lora_dropout'] === 'number', 'lora_dropout', 'a number');
  for (const k of ['use_rslora', 'fan_in_fan_out', 'use_dora', 'inference_mode']) need(j[k] === undefined || typeof j[k] === 'boolean', k, 'true or false');
  need(j['bias'] === undefined || j['bias'] === 'none' || j['bias'] === 'all' || j['bias'] === 'lora_only', 'bias', '"none", "all" or "lora_only"');
  need(j['modules_to_save'] === undefined || j['modules_to_save'] === null || isStrList(j['modules_to_save']), 'modules_to_save', 'null or a list of names');
  need(j['rank_pattern'] === undefined || isNumMap(j['rank_pattern']), 'rank_pattern', 'an object of integers');
  need(j['alpha_pattern'] === undefined || isNumMap(j['alpha_pattern']), 'alpha_pattern', 'an object of numbers');
  if (problems.length > 0) {
    throw new CliniloraError('E_CONFIG', `invalid adapter config:\n  ${problems.join('\n  ')}`, { file });
  }
  const base = defaultPeftLoraConfig({ r: r as number, targetModules: [] });
  const known = new Set<string>(['peft_type', ...FIELDS.map(([, s]) => s)]);
  const cfg: Record<string, unknown> = { ...base };
  for (const [camel, snake] of FIELDS) if (j[snake] !== undefined) cfg[camel] = j[snake];
  const out = cfg as unknown as PeftLoraConfig;
  if (typeof tm === 'string') {
    out.targetModulesRegex = tm;
    out.targetModules = [];
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(j)) if (!known.has(k) && !(k in PEFT_DEFAULT_KEYS && stableJson(v) === stableJson(PEFT_DEFAULT_KEYS[k]))) extra[k] = v;
  if (Object.keys(extra).length > 0) out.extra = extra;
  return out;
}

/** The rank PEFT would give `module`: a matching rank_pattern entry, else r. */
export function rankFor(config: PeftLoraConfig, module: string): number {
  for (const [key, rank] of Object.entries(config.rankPattern)) {
    // PEFT: re.match(rf"(.*\.)?{key}$", module) — the key is a regex anchored at the name's end
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(?:${key})$`);
    } catch {
      continue;
    }
    if (re.test(module)) return rank;
  }
  return config.r;
}

/** Shape problems of one module's pair, as sentences (empty when fine). */
function pairProblems(config: PeftLoraConfig, module: string, pair: Partial<LoraPair>): string[] {
  const out: string[] = [];
  const rank = rankFor(config, module);
  const { loraA: a, loraB: b } = pair;
  if (a === undefined) out.push(`${module}: lora_B without lora_A`);
  if (b === undefined) out.push(`${module}: lora_A without lora_B`);
  if (a !== undefined && (a.shape.length !== 2 || a.shape[0] !== rank)) {
    out.push(`${module}.lora_A: expected [${rank}, in], found [${a.shape.join(', ')}]`);
  }
  if (b !== undefined && (b.shape.length !== 2 || b.shape[1] !== rank)) {
    out.push(`${module}.lora_B: expected [out, ${rank}], found [${b.shape.join(', ')}]`);
  }
  return out;
}

/** Writes adapter_config.json and adapter_model.safetensors into `dir`, atomically. */
export function saveAdapterFiles(dir: string, config: PeftLoraConfig, modules: ReadonlyMap<string, LoraPair>): void {
  const problems: string[] = [];
  for (const [module, pair] of modules) {
    if (module.startsWith(KEY_PREFIX)) problems.push(`${module}: give the module name without the '${KEY_PREFIX}' prefix`);
    problems.push(...pairProblems(config, module, pair));
  }
  if (problems.length > 0) {
    throw new CliniloraError('E_SHAPE', `cannot save adapter, ${problems.length} problem(s):\n  ${problems.join('\n  ')}`, { file: dir });
  }
  const tensors: Array<[string, RawTensor]> = [];
  for (const [module, { loraA, loraB }] of modules) {
    tensors.push([`${KEY_PREFIX}${module}.lora_A.weight`, loraA], [`${KEY_PREFIX}${module}.lora_B.weight`, loraB]);
  }
  writeDirAtomic(dir, (tmp) => {
    writeFileAtomic(join(tmp, ADAPTER_CONFIG_FILE), stableJson(peftConfigToJson(config)));
    writeSafetensors(join(tmp, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  });
}

/** Reads a PEFT LoRA adapter directory; every key and shape problem is reported in one error. */
export function loadAdapterFiles(dir: string): { config: PeftLoraConfig; modules: Map<string, LoraPair> } {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const config = peftConfigFromJson(readJsonFile(configPath, 'a PEFT adapter directory needs adapter_config.json'), configPath);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    const bin = existsSync(join(dir, 'adapter_model.bin'));
    throw new CliniloraError('E_MISSING', `${ADAPTER_WEIGHTS_FILE} not found`, {
      file: weightsPath,
      hint: bin
        ? 'only safetensors adapters are supported; re-save with PeftModel.save_pretrained(dir, safe_serialization=True)'
        : 'a PEFT adapter directory needs adapter_model.safetensors',
    });
  }
  const f = openSafetensors(weightsPath);
  try {
    const pairs = new Map<string, Partial<LoraPair>>();
    const problems: string[] = [];
    const re = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;
    for (const key of f.names()) {
      const m = re.exec(key);
      if (m === null) {
        problems.push(`${key}: not a LoRA key (expected ${KEY_PREFIX}<module>.lora_A.weight or .lora_B.weight)`);
        continue;
      }
      const module = m[1]!;
      const pair = pairs.get(module) ?? {};
      pair[m[2] === 'A' ? 'loraA' : 'loraB'] = f.read(key);
      pairs.set(module, pair);
    }
    for (const [module, pair] of pairs) problems.push(...pairProblems(config, module, pair));
    if (problems.length > 0) {
      throw new CliniloraError('E_FORMAT', `adapter weights do not match the config, ${problems.length} problem(s):\n  ${problems.join('\n  ')}`, { file: weightsPath });
    }
    return { config, modules: pairs as Map<string, LoraPair> };
  } finally {
    f.close();
  }
}
