/**
 * Trains the shipped base:
 *   node --import tsx src/pretrain/main.ts --config experiments/base/phi3-nano.yaml [--set k=v …]
 *     [--resume] [--no-save] [--no-record] [--root DIR] [--card-only]
 * Ctrl-C writes a checkpoint and exits non-zero; `--resume` continues it (same run record).
 * On completion the model lands in output.dir with MODEL_CARD.md and README.md (src/pretrain/card.ts);
 * `--card-only` rewrites those two from the finished run's record without training.
 */
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backend/index.ts';
import { loadPretrainConfig } from './config.ts';
import { pretrain } from './train.ts';
import { cardInfoFromRun, writeModelCard } from './card.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      resume: { type: 'boolean' },
      'no-save': { type: 'boolean' },
      'no-record': { type: 'boolean' },
      root: { type: 'string' },
      'card-only': { type: 'boolean' },
    },
  });
  const cfg = loadPretrainConfig(values.config, values.set ?? []);
  const root = resolve(values.root ?? process.cwd());
  const configPath = values.config !== undefined ? relative(root, resolve(values.config)) : undefined;
  if (values['card-only'] === true) {
    const info = await cardInfoFromRun(cfg, root, configPath);
    writeModelCard(info.result.savedTo!, info);
    process.stdout.write(`wrote ${info.result.savedTo}/MODEL_CARD.md from run ${info.result.runId}\n`);
    return 0;
  }
  const backend = await initBackend(cfg.backend === 'auto' ? {} : { backend: cfg.backend });
  process.stderr.write(`backend: ${backend.name} (${backend.threads} threads${backend.simd ? ', SIMD' : ''})\n`);
  const evals: Array<{ step: number; loss: number }> = [];
  const r = await pretrain({
    config: cfg, root, resume: values.resume === true, save: values['no-save'] !== true, record: values['no-record'] !== true, backend,
    callbacks: [{ onEval: (e) => { evals.push({ step: e.step, loss: e.valLoss }); } }],
  });
  const s = r.summary;
  const out = {
    status: s.status, steps: s.step, tokensSeen: s.tokens, seconds: Math.round(s.elapsedMs / 1000),
    tokensPerSec: Math.round(s.tokens / (s.elapsedMs / 1000)), firstLoss: s.losses[0], finalLoss: s.finalLoss,
    validationLoss: r.validationLoss, runId: r.runId, savedTo: r.savedTo, savedBytes: r.savedBytes, corpus: r.corpus,
  };
  if (r.savedTo !== undefined && s.status === 'completed') {
    // After a resume the evaluations before it are only in the record: rebuild from there when it exists.
    const info = r.runId !== undefined ? await cardInfoFromRun(cfg, root, configPath) : { result: r, config: cfg, configPath, backend, evals };
    writeModelCard(r.savedTo, info);
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  r.model.dispose();
  return s.status === 'completed' ? 0 : 130;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
