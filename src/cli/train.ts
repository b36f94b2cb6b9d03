/**
 * `clinilora train <config> [--set k=v ...]`: one training run (src/pipeline/train.ts). Prints the
 * run id, the summary table (base alone vs adapter) and the timings. Exit 0 when completed, 3 when
 * interrupted (SIGINT/SIGTERM: a checkpoint is written, the record says interrupted), 2 on bad input,
 * 1 on a bug.
 */
import { loadConfig } from '../config/load.ts';
import { runTraining } from '../pipeline/train.ts';
import { summaryTable, timingLine } from '../pipeline/summary.ts';
import { checkTargets, targetsTable } from '../pipeline/targets.ts';
import { defineCommand } from './command.ts';

export const EXIT_INTERRUPTED = 3;

export const trainCommand = defineCommand({
  name: 'train',
  description: 'Train a LoRA adapter as a config says, evaluate it against the base alone, record the run',
  positionals: [{ name: 'config', description: 'A YAML config file, or a shipped config name (auditor-nano, heart-nano, ...)', required: true }],
  flags: {
    set: { type: 'string', multiple: true, placeholder: 'key=value', description: 'Override a config key (repeatable), e.g. --set training.lr=2e-4' },
    resume: { type: 'string', placeholder: 'checkpoint-dir', description: 'Continue from a checkpoint of the same config (experiments/runs/<id>/checkpoints/step-…)' },
    'no-base-eval': { type: 'boolean', description: 'Skip evaluating the base alone' },
    quiet: { type: 'boolean', short: 'q', description: 'No progress lines (the summary is still printed)' },
  },
  async run({ flags, positionals, stdout, stderr }) {
    const loaded = loadConfig(positionals[0]!, { set: flags.set ?? [] });
    const log = flags.quiet === true ? () => {} : (line: string) => void stderr.write(`${line}\n`);
    log(`config ${loaded.file}${loaded.set.length > 0 ? ` with ${loaded.set.join(' ')}` : ''} (hash ${loaded.hash.slice(0, 12)})`);
    const r = await runTraining(loaded.config, {
      name: loaded.name,
      onProgress: log,
      progress: flags.quiet !== true,
      compareBase: flags['no-base-eval'] !== true,
      ...(flags.resume !== undefined ? { resumeFrom: flags.resume } : {}),
      tags: loaded.set.length > 0 ? ['overrides'] : [],
    });
    stdout.write(`run ${r.runId} ${r.status}\n`);
    stdout.write(`record ${r.runDir}/run.json\n`);
    if (r.status === 'interrupted') {
      stdout.write(`interrupted at step ${r.train.step}/${r.train.totalSteps}; checkpoint ${r.train.lastCheckpoint ?? 'none'}\n`);
      stdout.write(`continue with: clinilora train ${positionals[0]} ${(flags.set ?? []).map((s) => `--set ${s} `).join('')}--resume ${r.train.lastCheckpoint ?? '<checkpoint>'}\n`);
      return EXIT_INTERRUPTED;
    }
    stdout.write(`adapter ${r.adapterDir}\n`);
    stdout.write(`steps ${r.train.step}, final loss ${r.train.finalLoss?.toFixed(4) ?? '—'}, best validation loss ${r.train.bestValLoss?.toFixed(4) ?? '—'} (step ${r.train.bestStep ?? '—'})\n\n`);
    stdout.write(`${loaded.config.task}, ${loaded.config.eval.split} split, n=${r.adapterEval?.n ?? 0}\n`);
    stdout.write(`${summaryTable(loaded.config.task, r.baseEval, r.adapterEval)}\n\n${timingLine(r.timings)}\n`);
    stdout.write(`\ntargets of the task (issue 4; set for its default nano config):\n${targetsTable(checkTargets(loaded.config.task, r.metrics))}\n`);
    return 0;
  },
});
