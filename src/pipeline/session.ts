/**
 * A model ready to answer, for `generate`, `chat`, `merge` and `export`: the base (a flag, the
 * adapter's own record, or the config's model.base) with an optional adapter, the task's config
 * (the adapter's training config when it has one) and the tokenizer.
 */
import type { CliniloraConfig, ConfigTask } from '../config/defaults.ts';
import { defineConfig } from '../config/load.ts';
import { phi3Tokenizer } from '../data/tokens.ts';
import type { Phi3Tokenizer } from '../tokenizer/index.ts';
import { adapterBaseSpec, loadModel, resolveAdapter, startBackend, type LoadedModel, type ResolvedAdapter } from './resources.ts';

export interface OpenModelOptions {
  /** A run id or an adapter directory. */
  adapter?: string;
  /** Base spec (directory or preset:…); wins over the adapter's record. */
  base?: string;
  /** Task when no adapter says it (default 'auditor'). */
  task?: ConfigTask;
  /** `key=value` config overrides (eval.maxNewTokens=64, model.quant=none, …). */
  set?: readonly string[];
  /** Load the base in float32 whatever the config's quant (merging and exporting want exact weights). */
  float?: boolean;
}

export interface ModelSession extends LoadedModel {
  config: CliniloraConfig;
  tokenizer: Phi3Tokenizer;
  adapter: ResolvedAdapter | null;
}

export async function openModel(opts: OpenModelOptions = {}): Promise<ModelSession> {
  const adapter = opts.adapter !== undefined ? resolveAdapter(opts.adapter) : null;
  const fromAdapter = adapter?.meta?.config;
  const config = defineConfig(fromAdapter ?? { task: opts.task ?? 'auditor' }, opts.set ?? []);
  if (opts.task !== undefined && fromAdapter !== undefined && opts.task !== fromAdapter.task) config.task = opts.task;
  const baseSpec = opts.base ?? (adapter !== null ? adapterBaseSpec(adapter, config.model.base) : config.model.base);
  await startBackend(config);
  const loaded = loadModel(baseSpec, config.seed, {
    quant: opts.float === true ? 'none' : config.model.quant,
    doubleQuant: config.model.doubleQuant,
    int8Threshold: config.model.int8Threshold,
    ...(adapter !== null ? { adapterDir: adapter.dir } : {}),
    field: opts.base !== undefined ? '--base' : 'model.base',
  });
  return { ...loaded, config, tokenizer: await phi3Tokenizer(), adapter };
}
