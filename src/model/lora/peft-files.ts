/**
 * LoRA layers ↔ PEFT adapter directories (`adapter_config.json` + `adapter_model.safetensors`), so an
 * adapter trained here loads in PEFT for the same base, and one from PEFT loads here.
 * The file format itself lives in src/io/peft.ts; this file only converts between the two shapes.
 */
import { join } from 'node:path';
import { defaultPeftLoraConfig, loadAdapterFiles, saveAdapterFiles, type LoraPair, type PeftLoraConfig } from '../../io/peft.ts';
import { fromFloat32, toFloat32 } from '../../io/tensor.ts';
import type { Rng } from '../../util/random.ts';
import type { LoraConfig } from './config.ts';
import { attachLora, detachLora, loadLoraStateDict, loraStateDict, type LinearContainer, type LoraTensors } from './model.ts';

export interface SaveAdapterOptions {
  /** Written as base_model_name_or_path (a hub id or a local path). */
  baseModelNameOrPath?: string | null;
}

/** PEFT's config for our LoRA config (camelCase here; snake_case on disk is src/io/peft.ts's job). */
export function toPeftConfig(config: LoraConfig, opts: SaveAdapterOptions = {}): PeftLoraConfig {
  return defaultPeftLoraConfig({
    r: config.r,
    loraAlpha: config.loraAlpha,
    loraDropout: config.loraDropout,
    targetModules: [...config.targetModules],
    ...(config.targetModulesRegex !== undefined ? { targetModulesRegex: config.targetModulesRegex } : {}),
    useRslora: config.useRslora,
    rankPattern: { ...(config.rankPattern ?? {}) },
    alphaPattern: { ...(config.alphaPattern ?? {}) },
    initLoraWeights: config.initLoraWeights ?? true,
    baseModelNameOrPath: opts.baseModelNameOrPath ?? null,
  });
}

/** Our LoRA config from PEFT's (PeftLoraConfig carries every field LoraConfig reads). */
export function fromPeftConfig(peft: PeftLoraConfig): LoraConfig {
  return {
    r: peft.r,
    loraAlpha: peft.loraAlpha,
    loraDropout: peft.loraDropout,
    targetModules: [...peft.targetModules],
    ...(peft.targetModulesRegex !== undefined ? { targetModulesRegex: peft.targetModulesRegex } : {}),
    useRslora: peft.useRslora,
    rankPattern: { ...peft.rankPattern },
    alphaPattern: { ...peft.alphaPattern },
    initLoraWeights: peft.initLoraWeights,
    useDora: peft.useDora,
    bias: peft.bias,
    fanInFanOut: peft.fanInFanOut,
  };
}

/** Writes the model's LoRA adapters as a PEFT adapter directory (atomically). */
export function saveLoraAdapter(dir: string, container: LinearContainer, config: LoraConfig, opts: SaveAdapterOptions = {}): void {
  const modules = new Map<string, LoraPair>();
  for (const [name, t] of loraStateDict(container)) {
    modules.set(name, { loraA: fromFloat32(t.loraA, t.shapeA, 'F32'), loraB: fromFloat32(t.loraB, t.shapeB, 'F32') });
  }
  saveAdapterFiles(dir, toPeftConfig(config, opts), modules);
}

/**
 * Loads a PEFT adapter directory into the model: attaches LoRA layers as its config says (unless the
 * model already has them) and sets their weights. Shape or name mismatches are collected into one
 * error naming the adapter file (an adapter for another base fails here, before any weight changes).
 */
export function loadLoraAdapter(dir: string, container: LinearContainer, rng: Rng, opts: { attach?: boolean } = {}): LoraConfig {
  const { config: peft, modules } = loadAdapterFiles(dir);
  const config = fromPeftConfig(peft);
  const attached = opts.attach ?? true;
  if (attached) attachLora(container, config, rng);
  const weights = new Map<string, LoraTensors>();
  for (const [name, pair] of modules) {
    weights.set(name, {
      loraA: toFloat32(pair.loraA),
      shapeA: pair.loraA.shape as [number, number],
      loraB: toFloat32(pair.loraB),
      shapeB: pair.loraB.shape as [number, number],
    });
  }
  try {
    loadLoraStateDict(container, weights, { file: join(dir, 'adapter_model.safetensors') });
  } catch (e) {
    if (attached) detachLora(container); // leave the model as it was
    throw e;
  }
  return config;
}
