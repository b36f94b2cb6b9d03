/**
 * `clinilora notebooks run [paths] [-p key=value ...]` and `clinilora notebooks ls`: thin over
 * src/notebook/run.ts. A failing cell fails the command (exit 1) with the notebook, the cell index
 * (0-based, as in the file) and the error.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { cellSource, declaredNames, PARAMETERS_TAG, parseParameters, readNotebook } from '../notebook/nbformat.ts';
import { describeFailure, runNotebook, type NotebookExecutor } from '../notebook/run.ts';
import { defineCommand, parseCommandArgs, renderCommandHelp, type CommandDef } from './command.ts';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** The package's notebooks (notebooks/*.ipynb), sorted. */
export function defaultNotebooks(): string[] {
  const dir = join(packageRoot(), 'notebooks');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb'))
    .sort()
    .map((f) => join(dir, f));
}

const runCommand = defineCommand({
  name: 'notebooks run',
  description: 'Execute notebooks headless (Jupyter with the clinilora kernel when present, else in-process); each is recorded as a notebook run',
  positionals: [{ name: 'paths', description: 'Notebooks to run (default: notebooks/*.ipynb)', rest: true }],
  flags: {
    param: { type: 'string', short: 'p', multiple: true, placeholder: 'key=value', description: "Parameter injected after the 'parameters' cell (JSON values, else strings; repeatable)" },
    out: { type: 'string', placeholder: 'path', description: 'Also write the executed notebook here (a file, or a directory for several)' },
    executor: { type: 'string', placeholder: 'auto|jupyter|inprocess', description: 'How to execute (default auto: Jupyter when found)' },
    python: { type: 'string', placeholder: 'path', description: 'Python with nbclient for Jupyter (default CLINILORA_PYTHON, /usr/bin/python3, python3)' },
    timeout: { type: 'string', placeholder: 'seconds', description: 'Longest a cell may run under Jupyter (default 1800)' },
    home: { type: 'string', placeholder: 'dir', description: 'Where experiments/runs lives (default CLINILORA_HOME or the package root)' },
    'no-record': { type: 'boolean', description: 'Do not record a run (then --out keeps the executed notebook)' },
    tag: { type: 'string', multiple: true, placeholder: 'tag', description: 'Tag for the run record (repeatable)' },
    quiet: { type: 'boolean', short: 'q', description: 'No progress lines' },
  },
  async run({ flags, positionals, stdout, stderr }) {
    const executor = flags.executor ?? 'auto';
    if (!['auto', 'jupyter', 'inprocess'].includes(executor)) {
      throw new CliniloraError('E_ARG', 'unknown executor', { field: '--executor', expected: 'auto | jupyter | inprocess', found: executor });
    }
    let timeoutS: number | undefined;
    if (flags.timeout !== undefined) {
      timeoutS = Number(flags.timeout);
      if (!Number.isInteger(timeoutS) || timeoutS < 1) throw new CliniloraError('E_ARG', 'not a number of seconds', { field: '--timeout', expected: 'an integer >= 1', found: flags.timeout });
    }
    const parameters = parseParameters(flags.param ?? []);
    const paths = positionals.length > 0 ? positionals : defaultNotebooks();
    if (flags['no-record'] === true && flags.out === undefined) stderr.write('note: --no-record without --out keeps no executed notebook\n');
    const log = flags.quiet === true ? () => {} : (line: string) => void stderr.write(`${line}\n`);
    let failed = 0;
    for (const p of paths) {
      const r = await runNotebook(p, {
        parameters,
        executor: executor as NotebookExecutor | 'auto',
        record: flags['no-record'] !== true,
        onProgress: log,
        ...(flags.out !== undefined ? { out: paths.length > 1 && !flags.out.endsWith('/') ? `${flags.out}/` : flags.out } : {}),
        ...(flags.python !== undefined ? { python: flags.python } : {}),
        ...(flags.home !== undefined ? { root: flags.home } : {}),
        ...(timeoutS !== undefined ? { timeoutS } : {}),
        ...(flags.tag !== undefined ? { tags: flags.tag } : {}),
      });
      const saved = r.executedPath !== null ? `; executed notebook ${r.executedPath}` : '';
      if (r.status === 'ok') {
        stdout.write(`${r.notebook}: ok in ${(r.ms / 1000).toFixed(1)} s (${r.executor})${r.runId !== null ? `; run ${r.runId}` : ''}${saved}\n`);
      } else {
        failed++;
        stderr.write(`${describeFailure(r)}${r.runId !== null ? ` (run ${r.runId})` : ''}${saved}\n`);
      }
    }
    return failed > 0 ? 1 : 0;
  },
});

const lsCommand = defineCommand({
  name: 'notebooks ls',
  description: 'List notebooks and the parameters their "parameters" cell declares',
  positionals: [{ name: 'paths', description: 'Notebooks (default: notebooks/*.ipynb)', rest: true }],
  flags: {},
  async run({ positionals, stdout }) {
    for (const p of positionals.length > 0 ? positionals : defaultNotebooks()) {
      const nb = readNotebook(p);
      const cell = nb.cells.find((c) => c.cell_type === 'code' && (c.metadata.tags ?? []).includes(PARAMETERS_TAG));
      const names = cell !== undefined ? declaredNames(cellSource(cell)) : [];
      const rel = relative(process.cwd(), p);
      stdout.write(`${rel.startsWith('..') ? p : rel}  ${names.length > 0 ? `parameters: ${names.join(', ')}` : '(no parameters cell)'}\n`);
    }
    return 0;
  },
});

const SUBCOMMANDS: Record<string, CommandDef> = { run: runCommand as unknown as CommandDef, ls: lsCommand as unknown as CommandDef };

/** The raw `notebooks` command: dispatches to `run` or `ls`. */
export async function notebooksCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write('Run and list notebooks\n\nUsage: clinilora notebooks <run|ls> [flags] [paths...]\n\n  run   Execute notebooks headless and record each as a run\n  ls    List notebooks and their parameters\n');
    return sub === undefined ? 2 : 0;
  }
  const cmd = SUBCOMMANDS[sub];
  if (cmd === undefined) throw new CliniloraError('E_ARG', `unknown notebooks subcommand '${sub}'`, { hint: "use 'clinilora notebooks run' or 'clinilora notebooks ls'" });
  const parsed = parseCommandArgs(cmd, rest);
  if (parsed.flags.help === true) {
    io.stdout.write(renderCommandHelp(cmd));
    return 0;
  }
  return (await cmd.run({ flags: parsed.flags, positionals: parsed.positionals, stdout: io.stdout, stderr: io.stderr })) ?? 0;
}
