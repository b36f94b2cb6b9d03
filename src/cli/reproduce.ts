/**
 * `clinilora reproduce <id>`: re-run a recorded training run and compare (src/pipeline/reproduce.ts).
 * Exit 0 when reproduced, 4 when not (the first difference and the setup differences are printed and
 * stored in a kind 'reproduce' run), 2 on bad input (including a working tree that does not hold the
 * recorded code), 3 when interrupted.
 */
import { BACKEND_NAMES, type BackendName } from '../backend/index.ts';
import { CliniloraError } from '../errors.ts';
import { reproduceRun } from '../pipeline/reproduce.ts';
import { CROSS_BACKEND_TOLERANCE, formatVerdict } from '../tracker/verdict.ts';
import { defineCommand } from './command.ts';

export const EXIT_NOT_REPRODUCED = 4;
export const EXIT_INTERRUPTED = 3;

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new CliniloraError('E_ARG', `bad ${name}`, { field: name, expected: 'a number >= 0', found: JSON.stringify(v) });
  return x;
}

export const reproduceCommand = defineCommand({
  name: 'reproduce',
  description:
    'Re-run a recorded training run with its config, seed and sample IDs and compare the loss curve and metrics ' +
    '(exact on the same backend, within a tolerance across backends); the verdict is stored as a kind reproduce run',
  positionals: [{ name: 'id', description: 'Run id (or unique prefix, or path to run.json) of a completed train run', required: true }],
  flags: {
    'allow-dirty': { type: 'boolean', description: 'Run even when the working tree differs from the recorded commit, patch or untracked files' },
    checkout: { type: 'boolean', description: 'Run the recorded commit with its recorded patch in a temporary git worktree' },
    backend: { type: 'string', placeholder: 'name', description: `Backend for the re-run (${BACKEND_NAMES.join(', ')}; default the recorded one)` },
    rtol: { type: 'string', placeholder: 'x', description: `Compare within this relative tolerance (default exact on the same backend, ${CROSS_BACKEND_TOLERANCE.rtol} across)` },
    atol: { type: 'string', placeholder: 'x', description: `Absolute tolerance with --rtol (default ${CROSS_BACKEND_TOLERANCE.atol})` },
    set: { type: 'string', multiple: true, placeholder: 'key=value', description: 'Override a config key: a what-if (e.g. --set seed=43), reported as not reproduced when results move' },
    home: { type: 'string', placeholder: 'dir', description: 'Where experiments/runs lives (default CLINILORA_HOME or the package root)' },
    json: { type: 'boolean', description: 'Print the verdict as JSON' },
    quiet: { type: 'boolean', short: 'q', description: 'No progress lines' },
  },
  async run({ flags, positionals, stdout, stderr }) {
    if (flags.home !== undefined) process.env.CLINILORA_HOME = flags.home;
    if (flags.backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(flags.backend)) {
      throw new CliniloraError('E_ARG', `unknown backend '${flags.backend}'`, { field: '--backend', expected: BACKEND_NAMES.join(' | '), found: flags.backend });
    }
    if (flags.checkout === true && flags['allow-dirty'] === true) {
      throw new CliniloraError('E_ARG', '--checkout and --allow-dirty exclude each other', { hint: '--checkout runs the recorded code; --allow-dirty runs this working tree' });
    }
    const rtol = positive('--rtol', flags.rtol);
    const atol = positive('--atol', flags.atol);
    if (atol !== undefined && rtol === undefined) throw new CliniloraError('E_ARG', '--atol needs --rtol', { field: '--atol', hint: 'pass --rtol 0 for an absolute tolerance only' });
    const log = flags.quiet === true ? () => {} : (line: string) => void stderr.write(`${line}\n`);
    const r = await reproduceRun(positionals[0]!, {
      ...(flags['allow-dirty'] === true ? { allowDirty: true } : {}),
      ...(flags.checkout === true ? { checkout: true } : {}),
      ...(flags.backend !== undefined ? { backend: flags.backend as BackendName } : {}),
      ...(rtol !== undefined ? { tolerance: { rtol, atol: atol ?? CROSS_BACKEND_TOLERANCE.atol } } : {}),
      set: flags.set ?? [],
      onProgress: log,
      progress: flags.quiet !== true && flags.json !== true,
    });
    if (r.status === 'interrupted') {
      stderr.write(`the re-run${r.rerunId !== null ? ` ${r.rerunId}` : ''} was interrupted: no verdict\n`);
      return EXIT_INTERRUPTED;
    }
    const v = r.verdict!;
    if (flags.json === true) stdout.write(`${JSON.stringify({ status: r.status, verdictRun: r.verdictRunId, ...v }, null, 2)}\n`);
    else stdout.write(`${formatVerdict(v)}verdict recorded as run ${r.verdictRunId}\n`);
    return v.reproduced ? 0 : EXIT_NOT_REPRODUCED;
  },
});
