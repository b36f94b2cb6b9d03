/**
 * Executing a notebook with Jupyter: Python's nbclient drives our kernel (registered for the call in
 * a private kernelspec prefix, so `kernel:install` is not required) through `execute.py`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliniloraError } from '../errors.ts';
import type { CellFailure } from './inprocess.ts';
import { installKernelSpec } from './install.ts';
import { readNotebook, writeNotebook, type Notebook } from './nbformat.ts';
import { NOTEBOOK_ENV } from './origin.ts';

const DRIVER = fileURLToPath(new URL('./execute.py', import.meta.url));
const PROBE = 'import nbclient, nbformat, jupyter_client';

/** Pythons tried in order: CLINILORA_PYTHON, Debian's, then whatever `python3` is on PATH. */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = [env.CLINILORA_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => p !== undefined && p !== '');
  return [...new Set(list)];
}

/** The first Python that can run notebooks with Jupyter (nbclient, nbformat, jupyter_client), or null. */
export function findJupyterPython(candidates: readonly string[] = pythonCandidates()): string | null {
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', PROBE], { stdio: 'ignore', timeout: 20_000 });
    if (r.status === 0) return py;
  }
  return null;
}

export interface JupyterExecuteOptions {
  python: string;
  /** The notebook's own path (cells run in its directory; origins name it). */
  path: string;
  sourceIndex?: readonly (number | null)[];
  env?: Record<string, string>;
  /** Seconds a cell may run (default 1800). */
  timeoutS?: number;
  /** Lines from the driver's stderr (kernel logs). */
  onLog?: (line: string) => void;
}

/** Runs `nb` under Jupyter; returns the executed notebook and the failure, if any. */
export async function executeWithJupyter(nb: Notebook, opts: JupyterExecuteOptions): Promise<{ notebook: Notebook; failure: CellFailure | null }> {
  const path = resolve(opts.path);
  const tmp = mkdtempSync(join(tmpdir(), 'clinilora-nbrun-'));
  try {
    const input = join(tmp, 'input.ipynb');
    const output = join(tmp, 'output.ipynb');
    writeNotebook(input, nb);
    installKernelSpec({ prefix: tmp, name: 'clinilora' });
    const jupyterPath = [join(tmp, 'share', 'jupyter'), process.env.JUPYTER_PATH].filter((p) => p !== undefined && p !== '').join(delimiter);
    const args = [DRIVER, input, output, '--kernel', 'clinilora', '--cwd', dirname(path), '--notebook', path, '--timeout', String(opts.timeoutS ?? 1800)];
    if (opts.sourceIndex !== undefined) args.push('--source-index', JSON.stringify(opts.sourceIndex));
    const env = {
      ...process.env,
      JUPYTER_PATH: jupyterPath,
      JUPYTER_RUNTIME_DIR: join(tmp, 'runtime'),
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
      [NOTEBOOK_ENV.notebook]: path,
      ...(opts.env ?? {}),
    };
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((ok, fail) => {
      const child = spawn(opts.python, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
      child.stderr.on('data', (b: Buffer) => {
        const s = b.toString('utf8');
        err += s;
        for (const line of s.split('\n')) if (line.trim() !== '') opts.onLog?.(line);
      });
      child.on('error', fail);
      child.on('close', (c) => ok({ code: c, stdout: out, stderr: err }));
    });
    const last = stdout.trim().split('\n').pop() ?? '';
    let result: { status: string; cell?: number | null; ename?: string; evalue?: string; error?: string };
    try {
      result = JSON.parse(last) as typeof result;
    } catch {
      throw new CliniloraError('E_IO', `Jupyter could not execute the notebook (exit ${code})`, { file: path, hint: stderr.trim().split('\n').slice(-8).join('\n') });
    }
    if (result.status === 'missing') throw new CliniloraError('E_MISSING', `${opts.python} lacks Jupyter: ${result.error ?? ''}`, { hint: 'apt-get install python3-nbconvert jupyter-client' });
    const executed = readNotebook(output);
    const failure = result.status === 'error' ? { cell: result.cell ?? -1, ename: result.ename ?? 'Error', evalue: result.evalue ?? '' } : null;
    return { notebook: executed, failure };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
