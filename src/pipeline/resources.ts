/**
 * What a run needs besides the config: the backend, the dataset for the config, the model (base +
 * optional adapter) and where an adapter came from. Shared by training, evaluation and the CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initBackend, type BackendInfo } from '../backend/index.ts';
import { nativeMatmulActive } from '../backend/native.ts';
import { configHash, validateConfig } from '../config/load.ts';
import type { CliniloraConfig } from '../config/defaults.ts';
import { buildAndWriteDataset, cliniloraHome, loadTaskDataset, type BuildDatasetOptions, type WrittenDataset } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { defineLoraConfig, type LoraConfig } from '../model/lora/config.ts';
import { loadLoraAdapter } from '../model/lora/peft-files.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { readRun } from '../tracker/store.ts';
import type { BackendSummary } from '../tracker/run.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { Rng } from '../util/random.ts';
import { loadBase, parseBaseSpec, type BaseSpec } from './base.ts';

/** Starts the backend the config asks for ('auto': tensorflow, wasm, cpu, or CLINILORA_BACKEND). */
export async function startBackend(config: Pick<CliniloraConfig, 'backend' | 'threads'>): Promise<BackendInfo> {
  return initBackend({ ...(config.backend !== 'auto' ? { backend: config.backend } : {}), ...(config.threads !== null ? { threads: config.threads } : {}) });
}

export function backendSummary(b: BackendInfo): BackendSummary {
  // native: matmuls through the OpenBLAS addon (src/backend/native.ts), whose sums run in another order.
  return { name: b.name, threads: b.threads, simd: b.simd, native: nativeMatmulActive() };
}

/** The dataset build options a config implies (only those its task takes). */
export function datasetOptions(config: CliniloraConfig): BuildDatasetOptions {
  const d = config.data;
  const o: BuildDatasetOptions = { seed: config.seed };
  if (d.ratios !== null) o.ratios = { ...d.ratios };
  if (config.task === 'auditor') {
    if (d.n !== null) o.n = d.n;
    if (d.maxTokens !== null) o.maxTokens = d.maxTokens;
  } else if (config.task === 'heart-risk') {
    if (d.incomplete !== null) o.incomplete = d.incomplete;
    o.includeTime = d.includeTime;
  } else {
    if (d.source !== null) o.source = resolve(d.source);
    if (d.maxTokens !== null) o.maxTokens = d.maxTokens;
  }
  return o;
}

/**
 * The config's dataset: `data.dir` when set (it must exist: a missing one is an error, nothing is
 * built there), else `<CLINILORA_HOME>/data/generated/<task>-<hash of the build options>`, built on
 * first use. Loading verifies the manifest and every sample ID.
 */
export async function datasetFor(config: CliniloraConfig, log: (line: string) => void = () => {}): Promise<WrittenDataset> {
  if (config.data.dir !== null) {
    const dir = resolve(config.data.dir);
    if (!existsSync(join(dir, 'manifest.json'))) {
      throw new CliniloraError('E_MISSING', 'the dataset directory named by the config has no manifest.json', {
        file: dir,
        field: 'data.dir',
        hint: `build it with 'clinilora data build ${config.task} --out ${config.data.dir}', or set data.dir to null to build one automatically`,
      });
    }
    return loadTaskDataset(config.task, dir);
  }
  const opts = datasetOptions(config);
  const key = configHash({ task: config.task, ...opts } as Record<string, unknown>).slice(0, 10);
  const dir = join(cliniloraHome(), 'data', 'generated', `${config.task}-${key}`);
  if (existsSync(join(dir, 'manifest.json'))) return loadTaskDataset(config.task, dir);
  log(`building the ${config.task} dataset into ${dir}`);
  return buildAndWriteDataset(config.task, opts, dir);
}

/** The config's LoRA settings as a LoraConfig (PEFT names). */
export function loraConfigOf(config: CliniloraConfig): LoraConfig {
  const l = config.lora;
  return defineLoraConfig({ r: l.r, loraAlpha: l.loraAlpha, loraDropout: l.loraDropout, targetModules: [...l.targetModules], useRslora: l.useRslora });
}

/** The sidecar written next to a PEFT adapter: which task, config and base it was trained for. */
export const ADAPTER_META_FILE = 'clinilora.json';

export interface AdapterMeta {
  schema: 'clinilora.adapter';
  version: 1;
  task: CliniloraConfig['task'];
  /** Canonical base spec (a preset spec includes its init seed). */
  base: string;
  runId: string | null;
  config: CliniloraConfig;
  configHash: string;
}

export function writeAdapterMeta(dir: string, meta: Omit<AdapterMeta, 'schema' | 'version'>): string {
  const file = join(dir, ADAPTER_META_FILE);
  writeFileAtomic(file, `${JSON.stringify({ schema: 'clinilora.adapter', version: 1, ...meta }, null, 2)}\n`);
  return file;
}

export function readAdapterMeta(dir: string): AdapterMeta | undefined {
  const file = join(dir, ADAPTER_META_FILE);
  if (!existsSync(file)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliniloraError('E_FORMAT', 'adapter metadata is not JSON', { file, hint: (e as Error).message });
  }
  const m = v as Partial<AdapterMeta>;
  if (m.schema !== 'clinilora.adapter' || typeof m.base !== 'string') throw new CliniloraError('E_FORMAT', 'not a clinilora adapter metadata file', { file, field: 'schema' });
  return { ...(m as AdapterMeta), config: validateConfig(m.config, file) };
}

export interface ResolvedAdapter {
  /** The PEFT directory. */
  dir: string;
  meta: AdapterMeta | undefined;
  /** The training run it came from, when known. */
  runId: string | null;
}

/**
 * A run id, a run directory or an adapter directory → the adapter directory and what is known of it.
 * A run's adapter is `<run dir>/adapter` (or the `outDir` its config named).
 */
export function resolveAdapter(ref: string): ResolvedAdapter {
  const asDir = resolve(ref);
  if (existsSync(join(asDir, 'adapter_config.json'))) {
    const meta = readAdapterMeta(asDir);
    return { dir: asDir, meta, runId: meta?.runId ?? null };
  }
  if (existsSync(join(asDir, 'adapter', 'adapter_config.json'))) return resolveAdapter(join(asDir, 'adapter'));
  let run;
  try {
    run = readRun(ref);
  } catch (e) {
    if (e instanceof CliniloraError && e.code === 'E_MISSING') {
      throw new CliniloraError('E_MISSING', 'no adapter directory or run with this name', {
        file: asDir,
        expected: 'a PEFT adapter directory (adapter_config.json) or a run id under experiments/runs/',
        found: ref,
      });
    }
    throw e;
  }
  const config = validateConfig(run.config, `run ${run.id}`);
  const runDir = join(cliniloraHome(), 'experiments', 'runs', run.id);
  const dir = join(config.outDir !== null ? resolve(config.outDir) : runDir, 'adapter');
  if (!existsSync(join(dir, 'adapter_config.json'))) {
    throw new CliniloraError('E_MISSING', `run ${run.id} has no saved adapter (status ${run.status})`, { file: dir, hint: 'an interrupted or failed run saves no adapter; train again' });
  }
  return { dir, meta: readAdapterMeta(dir), runId: run.id };
}

/** The base spec for an adapter: its sidecar, else its adapter_config.json base, else `fallback`. */
export function adapterBaseSpec(adapter: ResolvedAdapter, fallback: string): string {
  if (adapter.meta !== undefined) return adapter.meta.base;
  try {
    const cfg = JSON.parse(readFileSync(join(adapter.dir, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path?: unknown };
    if (typeof cfg.base_model_name_or_path === 'string' && cfg.base_model_name_or_path !== '') return cfg.base_model_name_or_path;
  } catch {
    // the adapter loader reports a broken adapter_config.json with its file and field
  }
  return fallback;
}

export interface LoadedModel {
  model: Phi3ForCausalLM;
  base: BaseSpec;
  lora: LoraConfig | null;
}

/** Loads the base (quantized as `quant` says) and, when given, the adapter on top of it. */
export function loadModel(baseSpec: string, seed: number, opts: { quant?: CliniloraConfig['model']['quant']; doubleQuant?: boolean; int8Threshold?: number; adapterDir?: string; field?: string } = {}): LoadedModel {
  const base = parseBaseSpec(baseSpec, seed, opts.field);
  const model = loadBase(base, { quant: opts.quant ?? 'none', doubleQuant: opts.doubleQuant, int8Threshold: opts.int8Threshold });
  if (opts.adapterDir === undefined) return { model, base, lora: null };
  try {
    const lora = loadLoraAdapter(opts.adapterDir, model, new Rng(seed).split('lora'));
    return { model, base, lora };
  } catch (e) {
    model.dispose();
    if (e instanceof CliniloraError && (e.code === 'E_SHAPE' || e.code === 'E_FORMAT')) {
      throw new CliniloraError(e.code, `the adapter does not fit this base (${base.spec}): ${e.message}`, { file: opts.adapterDir, hint: 'an adapter loads only on the base it was trained on; pass --base to name it' });
    }
    throw e;
  }
}

