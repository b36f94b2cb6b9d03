/**
 * The base model a run starts from, named by `config.model.base`:
 *   - a directory in HF layout (`config.json` + safetensors): absolute, or relative to the package
 *     root (the shipped `models/phi3-nano`), else to the working directory;
 *   - `preset:<name>[?key=value&...]`: a randomly initialised model of a shape preset
 *     (src/model/config.ts), for tests and smoke runs. Keys override the preset's shape
 *     (hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads,
 *     maxPositionEmbeddings, initializerRange) and `seed` fixes the init (default: the config's seed).
 *     e.g. `preset:phi3-nano?hiddenSize=64&intermediateSize=128&numHiddenLayers=1&numAttentionHeads=2&numKeyValueHeads=2`.
 * An adapter records the canonical spec (seed included) as `base_model_name_or_path`, so the same
 * random base is rebuilt for it later.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { buildPhi3, loadPhi3, memoryRows, phi3Tensors } from '../model/checkpoint.ts';
import { getPreset, presetNames, type PhiConfig } from '../model/config.ts';
import { randomWeights } from '../model/init.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { Rng } from '../util/random.ts';
import { hashFiles } from '../tracker/run.ts';

export const PRESET_PREFIX = 'preset:';
/** Shape keys a preset spec may override. */
export const PRESET_KEYS = ['hiddenSize', 'intermediateSize', 'numHiddenLayers', 'numAttentionHeads', 'numKeyValueHeads', 'maxPositionEmbeddings', 'initializerRange'] as const;
type PresetKey = (typeof PRESET_KEYS)[number];

export type BaseSpec =
  | { kind: 'dir'; spec: string; dir: string }
  | { kind: 'preset'; spec: string; preset: string; overrides: Partial<Record<PresetKey, number>>; seed: number; config: PhiConfig };

export interface BaseLoadOptions {
  quant?: 'none' | 'int8' | 'nf4';
  doubleQuant?: boolean;
  int8Threshold?: number;
}

export function isPresetSpec(spec: string): boolean {
  return spec.startsWith(PRESET_PREFIX);
}

/** Parses a base spec; `seed` is the init seed for a preset without its own `seed=`. */
export function parseBaseSpec(spec: string, seed: number, field = 'model.base'): BaseSpec {
  if (!isPresetSpec(spec)) return { kind: 'dir', spec, dir: resolveBaseDir(spec, field) };
  const body = spec.slice(PRESET_PREFIX.length);
  const [name = '', query = ''] = body.split('?', 2);
  if (!presetNames().includes(name)) {
    throw new CliniloraError('E_CONFIG', 'unknown model preset in the base spec', { field, expected: `preset:<${presetNames().join('|')}>[?key=value&...]`, found: JSON.stringify(spec) });
  }
  const overrides: Partial<Record<PresetKey, number>> = {};
  let initSeed = seed;
  for (const part of query === '' ? [] : query.split('&')) {
    const [k = '', v = ''] = part.split('=', 2);
    const x = Number(v);
    if (v === '' || !Number.isFinite(x)) {
      throw new CliniloraError('E_CONFIG', `bad value for '${k}' in the base spec`, { field, expected: 'key=number', found: JSON.stringify(part) });
    }
    if (k === 'seed') {
      if (!Number.isInteger(x) || x < 0) throw new CliniloraError('E_CONFIG', 'bad seed in the base spec', { field, expected: 'an integer >= 0', found: v });
      initSeed = x;
    } else if ((PRESET_KEYS as readonly string[]).includes(k)) {
      if (k !== 'initializerRange' && (!Number.isInteger(x) || x < 1)) throw new CliniloraError('E_CONFIG', `bad '${k}' in the base spec`, { field, expected: 'an integer >= 1', found: v });
      overrides[k as PresetKey] = x;
    } else {
      throw new CliniloraError('E_CONFIG', `unknown key '${k}' in the base spec`, { field, expected: `one of ${[...PRESET_KEYS, 'seed'].join(', ')}`, found: JSON.stringify(k) });
    }
  }
  const config: PhiConfig = { ...getPreset(name), ...overrides };
  if (config.hiddenSize % config.numAttentionHeads !== 0 || config.numAttentionHeads % config.numKeyValueHeads !== 0) {
    throw new CliniloraError('E_CONFIG', 'preset shape: hiddenSize must divide by numAttentionHeads, and numAttentionHeads by numKeyValueHeads', {
      field,
      found: `hiddenSize ${config.hiddenSize}, heads ${config.numAttentionHeads}, kv heads ${config.numKeyValueHeads}`,
    });
  }
  const keys = Object.keys(overrides).sort() as PresetKey[];
  const canonical = `${PRESET_PREFIX}${name}?${[...keys.map((k) => `${k}=${overrides[k]}`), `seed=${initSeed}`].join('&')}`;
  return { kind: 'preset', spec: canonical, preset: name, overrides, seed: initSeed, config };
}

/** A base directory: absolute, or under the package root, or under the working directory. */
export function resolveBaseDir(spec: string, field = 'model.base'): string {
  const candidates = [...new Set(isAbsolute(spec) ? [spec] : [join(packageRoot(), spec), resolve(spec)])];
  for (const c of candidates) if (existsSync(join(c, 'config.json'))) return c;
  const found = candidates.find((c) => existsSync(c));
  throw new CliniloraError('E_MISSING', found !== undefined && statSync(found).isDirectory() ? 'the base directory has no config.json' : 'base model not found', {
    file: found ?? candidates[0],
    field,
    expected: 'a Hugging Face checkpoint directory (config.json + model.safetensors) or preset:<name>',
    found: `nothing at ${candidates.join(' or ')}`,
    hint:
      spec.replace(/\/$/, '').endsWith('phi3-nano')
        ? 'the shipped base models/phi3-nano is not in this tree yet; train it (see README) or use --set model.base=preset:phi3-nano for a random base'
        : 'give a directory path, or preset:phi3-nano for a randomly initialised base',
  });
}

/** Loads (or builds) the base, quantizing its linears as `opts.quant` says. */
export function loadBase(base: BaseSpec, opts: BaseLoadOptions = {}): Phi3ForCausalLM {
  const q = { quant: opts.quant ?? 'none', doubleQuant: opts.doubleQuant, threshold: opts.int8Threshold } as const;
  if (base.kind === 'dir') return loadPhi3(base.dir, q);
  const shapes = new Map(phi3Tensors(base.config).map((e) => [e.name, e.shape]));
  const source = randomWeights(base.config, new Rng(base.seed).split('init'));
  // Random tensors go through the same chunked builder as a checkpoint, so quantization is identical.
  return buildPhi3(base.config, (name) => memoryRows(source(name) as Float32Array, shapes.get(name)!), q);
}

/** A short human description: "models/phi3-nano (dir)" or "preset phi3-nano (random init, seed 42)". */
export function describeBase(base: BaseSpec): string {
  return base.kind === 'dir' ? `${base.spec} (${base.dir})` : `${base.spec} (random init: a smoke-test base, not a trained model)`;
}

/**
 * What the run record says about its base: the spec, the sha256 over the directory's config.json and
 * weight files (names, sizes and contents; null for a random preset, which the spec's seed rebuilds),
 * and the quantization applied while loading.
 */
export async function baseModelInfo(base: BaseSpec, quantization: string): Promise<{ nameOrPath: string; sha256: string | null; quantization: string }> {
  if (base.kind === 'preset') return { nameOrPath: base.spec, sha256: null, quantization };
  const files = readdirSync(base.dir)
    .filter((f) => f === 'config.json' || f.endsWith('.safetensors') || f === 'model.safetensors.index.json')
    .map((f) => join(base.dir, f));
  return { nameOrPath: base.spec, sha256: await hashFiles(files, base.dir), quantization };
}
