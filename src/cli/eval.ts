/**
 * `clinilora eval <run-id|adapter-dir> [--split test] [--n N]`: scores an adapter on a split of its
 * task (src/pipeline/eval-run.ts) and records a kind 'eval' run with the predictions file.
 */
import { CliniloraError } from '../errors.ts';
import { runEvaluation } from '../pipeline/eval-run.ts';
import { summaryTable } from '../pipeline/summary.ts';
import { defineCommand } from './command.ts';

export const evalCommand = defineCommand({
  name: 'eval',
  description: "Evaluate an adapter (a training run's id or a PEFT adapter directory) on a split of its task",
  positionals: [{ name: 'run-or-adapter', description: 'A run id (experiments/runs/<id>) or an adapter directory', required: true }],
  flags: {
    split: { type: 'string', placeholder: 'test|validation', description: 'Split to evaluate (default: the config\'s eval.split)' },
    n: { type: 'string', placeholder: 'N', description: 'Evaluate at most N samples' },
    base: { type: 'string', placeholder: 'dir|preset:…', description: 'Base to load the adapter on (default: the one it records)' },
    config: { type: 'string', placeholder: 'config', description: 'Config for an adapter without clinilora.json' },
    set: { type: 'string', multiple: true, placeholder: 'key=value', description: 'Override a config key (repeatable)' },
    'compare-base': { type: 'boolean', description: 'Evaluate the base alone too' },
    quiet: { type: 'boolean', short: 'q', description: 'No progress lines' },
  },
  async run({ flags, positionals, stdout, stderr }) {
    const split = flags.split;
    if (split !== undefined && split !== 'test' && split !== 'validation') {
      throw new CliniloraError('E_ARG', 'unknown split', { field: '--split', expected: 'test | validation', found: JSON.stringify(split) });
    }
    let n: number | undefined;
    if (flags.n !== undefined) {
      n = Number(flags.n);
      if (!Number.isInteger(n) || n < 1) throw new CliniloraError('E_ARG', 'not a sample count', { field: '--n', expected: 'an integer >= 1', found: JSON.stringify(flags.n) });
    }
    const log = flags.quiet === true ? () => {} : (line: string) => void stderr.write(`${line}\n`);
    const r = await runEvaluation(positionals[0]!, {
      ...(split !== undefined ? { split } : {}),
      ...(n !== undefined ? { n } : {}),
      ...(flags.base !== undefined ? { base: flags.base } : {}),
      ...(flags.config !== undefined ? { config: flags.config } : {}),
      set: flags.set ?? [],
      compareBase: flags['compare-base'] === true,
      onProgress: log,
    });
    stdout.write(`run ${r.runId} completed\nrecord ${r.runDir}/run.json\nadapter ${r.adapterDir}\n`);
    stdout.write(`${r.evaluation.task}, ${r.evaluation.split} split, n=${r.evaluation.n}\n`);
    stdout.write(`${summaryTable(r.evaluation.task, r.baseEvaluation, r.evaluation)}\n`);
    return 0;
  },
});
