/**
 * A standalone evaluation (`clinilora eval`): an adapter (by run id or directory) on its base,
 * scored on a split of its task's dataset, recorded as a kind 'eval' run whose parent is the
 * training run, with the predictions file and the metrics.
 */
import { resolve } from 'node:path';
import type { CliniloraConfig } from '../config/defaults.ts';
import { defineConfig, loadConfig } from '../config/load.ts';
import { phi3Tokenizer } from '../data/tokens.ts';
import { CliniloraError } from '../errors.ts';
import { openRun } from '../tracker/run.ts';
import { baseModelInfo } from './base.ts';
import { evaluateTask, type TaskEvaluation } from './evaluate.ts';
import { adapterBaseSpec, backendSummary, datasetFor, loadModel, resolveAdapter, startBackend } from './resources.ts';
import { limit, saveEval } from './train.ts';

export interface RunEvaluationOptions {
  split?: CliniloraConfig['eval']['split'];
  /** Samples to evaluate; default the config's eval.n. */
  n?: number;
  /** Base spec to load the adapter on (default: the one the adapter records). */
  base?: string;
  /** A config (path or shipped name) for an adapter without clinilora metadata. */
  config?: string;
  /** `key=value` overrides on the adapter's config (e.g. eval.batchSize=4). */
  set?: string[];
  /** Also evaluate the base alone (default false). */
  compareBase?: boolean;
  onProgress?: (line: string) => void;
}

export interface RunEvaluationResult {
  runId: string;
  runDir: string;
  adapterDir: string;
  evaluation: TaskEvaluation;
  baseEvaluation: TaskEvaluation | null;
  metrics: Record<string, number>;
  ms: number;
}

export async function runEvaluation(ref: string, opts: RunEvaluationOptions = {}): Promise<RunEvaluationResult> {
  const t0 = performance.now();
  const log = opts.onProgress ?? (() => {});
  const adapter = resolveAdapter(ref);
  let config: CliniloraConfig;
  if (opts.config !== undefined) config = loadConfig(opts.config, { set: opts.set }).config;
  else if (adapter.meta !== undefined) config = defineConfig(adapter.meta.config, opts.set ?? []);
  else {
    throw new CliniloraError('E_MISSING', 'this adapter has no clinilora.json: which task and data it is for is unknown', {
      file: resolve(adapter.dir),
      hint: 'pass --config <config> (e.g. auditor-nano)',
    });
  }
  const split = opts.split ?? config.eval.split;
  if (opts.n !== undefined && (!Number.isInteger(opts.n) || opts.n < 1)) throw new CliniloraError('E_ARG', 'n must be an integer >= 1', { field: '--n', found: String(opts.n) });
  config = { ...config, eval: { ...config.eval, split, n: opts.n ?? config.eval.n } };
  const baseSpec = opts.base ?? adapterBaseSpec(adapter, config.model.base);
  const backend = await startBackend(config);
  // Load everything that can fail on bad input before the record exists.
  const data = await datasetFor(config, log);
  const loaded = loadModel(baseSpec, config.seed, { quant: config.model.quant, doubleQuant: config.model.doubleQuant, int8Threshold: config.model.int8Threshold, adapterDir: adapter.dir, field: '--base' });
  const run = await openRun({
    config: config as unknown as Record<string, unknown>,
    kind: 'eval',
    name: `${config.task}-eval`,
    backend: backendSummary(backend),
    manifest: data.manifest,
    dataDir: data.dir,
    parents: adapter.runId !== null ? [{ id: adapter.runId, role: 'adapter' }] : [],
  });
  let disposed = false;
  log(`eval run ${run.id}: adapter ${adapter.dir} on ${loaded.base.spec}`);
  try {
    run.setBaseModel(await baseModelInfo(loaded.base, config.model.quant));
    await run.addArtifact(resolve(adapter.dir, 'adapter_model.safetensors'), { kind: 'adapter-input' });
    const tok = await phi3Tokenizer();
    const samples = limit(data.splits[split], config.eval.n);
    const evaluation = evaluateTask(loaded.model, tok, samples, { config, splits: data.splits, split, onProgress: log });
    run.logEval({ step: null, split, metrics: evaluation.metrics });
    await saveEval(run, run.dir, evaluation, 'adapter');
    let baseEvaluation: TaskEvaluation | null = null;
    const metrics = { ...evaluation.metrics };
    if (opts.compareBase === true) {
      loaded.model.dispose();
      disposed = true;
      const bare = loadModel(baseSpec, config.seed, { quant: config.model.quant, doubleQuant: config.model.doubleQuant, int8Threshold: config.model.int8Threshold });
      try {
        baseEvaluation = evaluateTask(bare.model, tok, samples, { config, splits: data.splits, split, onProgress: (l) => log(`base: ${l}`) });
      } finally {
        bare.model.dispose();
      }
      run.logEval({ step: null, split: `${split}:base`, metrics: baseEvaluation.metrics });
      await saveEval(run, run.dir, baseEvaluation, 'base');
      for (const [k, v] of Object.entries(baseEvaluation.metrics)) metrics[`base_${k}`] = v;
    }
    const ms = performance.now() - t0;
    metrics.total_ms = Math.round(ms);
    run.finish('completed', { metrics });
    return { runId: run.id, runDir: run.dir, adapterDir: adapter.dir, evaluation, baseEvaluation, metrics, ms };
  } catch (e) {
    run.finish('failed', { error: e });
    throw e;
  } finally {
    if (!disposed) loaded.model.dispose();
  }
}
