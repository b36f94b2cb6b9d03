/**
 * `clinilora targets [task...] [--set k=v ...] [--json]`: trains and evaluates each task's default nano
 * config (auditor-nano, heart-nano, alpacare-nano) exactly as `clinilora train` would, then prints each
 * run's metrics against the task's targets (src/pipeline/targets.ts). Exit 0 when every target is met,
 * 4 when some are not (the runs are still recorded), 2 on bad input.
 */
import { loadConfig } from '../config/load.ts';
import { CONFIG_TASKS, type CliniloraConfig } from '../config/defaults.ts';
import { CliniloraError } from '../errors.ts';
import { runTraining } from '../pipeline/train.ts';
import { summaryTable, timingLine } from '../pipeline/summary.ts';
import { checkTargets, targetsTable, type TargetVerdict } from '../pipeline/targets.ts';
import { defineCommand } from './command.ts';

export const EXIT_TARGETS_MISSED = 4;

const DEFAULT_CONFIGS: Readonly<Record<CliniloraConfig['task'], string>> = { auditor: 'auditor-nano', 'heart-risk': 'heart-nano', alpacare: 'alpacare-nano' };

export const targetsCommand = defineCommand({
  name: 'targets',
  description: "Train and evaluate each task's default nano config and check the results against the task's targets",
  positionals: [{ name: 'task', description: `Tasks to check (default all): ${CONFIG_TASKS.join(', ')}`, rest: true }],
  flags: {
    set: { type: 'string', multiple: true, placeholder: 'key=value', description: 'Override a config key in every run (the verdict then no longer speaks for the default config)' },
    json: { type: 'boolean', description: 'Print one JSON object per task instead of tables' },
  },
  async run({ flags, positionals, stdout, stderr }) {
    const tasks = positionals.length > 0 ? positionals : [...CONFIG_TASKS];
    for (const t of tasks) {
      if (!(CONFIG_TASKS as readonly string[]).includes(t)) {
        throw new CliniloraError('E_ARG', `unknown task '${t}'`, { field: 'task', expected: CONFIG_TASKS.join(', '), found: t });
      }
    }
    let allMet = true;
    for (const task of tasks as CliniloraConfig['task'][]) {
      const loaded = loadConfig(DEFAULT_CONFIGS[task], { set: flags.set ?? [] });
      stderr.write(`== ${task}: ${loaded.file}${loaded.set.length > 0 ? ` with ${loaded.set.join(' ')}` : ''}\n`);
      const r = await runTraining(loaded.config, { name: loaded.name, onProgress: (l) => void stderr.write(`${l}\n`), tags: ['targets', ...(loaded.set.length > 0 ? ['overrides'] : [])] });
      const verdicts: TargetVerdict[] = r.status === 'completed' ? checkTargets(task, r.metrics) : [];
      const met = r.status === 'completed' && verdicts.every((v) => v.met);
      allMet &&= met;
      if (flags.json === true) {
        stdout.write(`${JSON.stringify({ task, config: loaded.file, overrides: loaded.set, runId: r.runId, status: r.status, metrics: r.metrics, timings: r.timings, targets: verdicts, met })}\n`);
      } else {
        stdout.write(`\n${task} (${loaded.name}), run ${r.runId} ${r.status}\n${summaryTable(task, r.baseEval, r.adapterEval)}\n${timingLine(r.timings)}\n\n`);
        stdout.write(`${verdicts.length > 0 ? targetsTable(verdicts) : 'no verdict: the run did not complete'}\n`);
      }
      if (r.status === 'interrupted') return 3;
    }
    return allMet ? 0 : EXIT_TARGETS_MISSED;
  },
});
