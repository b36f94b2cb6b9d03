/**
 * Running a notebook headless, as an experiment: parameters are injected after the `parameters` cell
 * (papermill), the notebook executes with Jupyter when a Python with nbclient is found, else in this
 * process with tslab's executor, and a run record of kind `notebook` keeps the parameters, the
 * outcome and the executed notebook as an artifact. Runs the notebook's cells open get it as a parent
 * (role 'notebook', through CLINILORA_PARENTS), see its id in CLINILORA_NOTEBOOK_RUN and their cell
 * in `notebookOrigin()`.
 */
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { openRun, type RunHandle } from '../tracker/run.ts';
import { executeInProcess, normalizeOutputs, type CellFailure } from './inprocess.ts';
import { executeWithJupyter, findJupyterPython } from './jupyter.ts';
import { cellSource, injectParameters, NOTEBOOK_METADATA, readNotebook, writeNotebook, type Notebook } from './nbformat.ts';
import { NOTEBOOK_ENV } from './origin.ts';

export type NotebookExecutor = 'jupyter' | 'inprocess';

export interface RunNotebookOptions {
  parameters?: Record<string, unknown>;
  /** Also write the executed notebook here: a `.ipynb` file, or a directory (same file name). */
  out?: string;
  /** 'auto' (default): Jupyter when available, else in-process. */
  executor?: NotebookExecutor | 'auto';
  /** Python for Jupyter (default: CLINILORA_PYTHON, /usr/bin/python3, python3 — the first with nbclient). */
  python?: string;
  /** Record a `notebook` run (default true). */
  record?: boolean;
  /** Home holding experiments/runs (default CLINILORA_HOME or the package root); cells get it as CLINILORA_HOME. */
  root?: string;
  /** Seconds a cell may run under Jupyter (default 1800). */
  timeoutS?: number;
  tags?: string[];
  onProgress?: (line: string) => void;
}

export interface NotebookFailure {
  /** Index of the failing cell in the notebook as given (0-based, markdown cells counted). */
  cell: number | null;
  /** Index in the executed notebook (differs after an injected parameters cell). */
  executedCell: number;
  ename: string;
  evalue: string;
}

export interface NotebookRunResult {
  notebook: string;
  status: 'ok' | 'error';
  executor: NotebookExecutor;
  runId: string | null;
  /** The executed notebook: in the run directory, or `out` when not recording. */
  executedPath: string | null;
  outPath: string | null;
  failure: NotebookFailure | null;
  /** Index of the injected parameters cell in the executed notebook. */
  injectedCell: number | null;
  ms: number;
}

/** "notebooks/01.ipynb: cell 5 failed: Error: boom" — what the CLI prints. */
export function describeFailure(r: NotebookRunResult): string {
  if (r.failure === null) return `${r.notebook}: ok`;
  const f = r.failure;
  const where = f.cell !== null ? `cell ${f.cell}` : `the injected parameters cell (${f.executedCell})`;
  return `${r.notebook}: ${where} failed: ${f.ename}: ${f.evalue.split('\n')[0]}`;
}

function displayPath(p: string): string {
  const rel = relative(packageRoot(), p);
  return rel.startsWith('..') ? p : rel;
}

function resolveOut(out: string, notebook: string): string {
  const isDir = out.endsWith('/') || (() => {
    try {
      return statSync(out).isDirectory();
    } catch {
      return false;
    }
  })();
  return isDir ? join(out, basename(notebook)) : resolve(out);
}

export async function runNotebook(path: string, opts: RunNotebookOptions = {}): Promise<NotebookRunResult> {
  const t0 = Date.now();
  const file = resolve(path);
  const log = opts.onProgress ?? (() => {});
  const source = readNotebook(file);
  const params = opts.parameters ?? {};
  const injected = injectParameters(source, params, displayPath(file));
  const nb: Notebook = { ...injected.notebook, metadata: { ...NOTEBOOK_METADATA, ...injected.notebook.metadata } };

  let executor: NotebookExecutor;
  let python: string | null = null;
  if (opts.executor === 'inprocess') executor = 'inprocess';
  else {
    python = findJupyterPython(opts.python !== undefined ? [opts.python] : undefined);
    if (python === null && opts.executor === 'jupyter') {
      throw new CliniloraError('E_MISSING', 'no Python with Jupyter (nbclient, nbformat, jupyter_client) was found', {
        hint: 'apt-get install python3-nbconvert jupyter-client, set CLINILORA_PYTHON, or use --executor inprocess',
      });
    }
    executor = python !== null ? 'jupyter' : 'inprocess';
  }

  let run: RunHandle | null = null;
  if (opts.record !== false) {
    run = await openRun({
      config: { task: 'notebook', seed: 0, notebook: displayPath(file), parameters: params, executor },
      kind: 'notebook',
      task: 'notebook',
      name: basename(file, '.ipynb'),
      tags: opts.tags ?? [],
      ...(opts.root !== undefined ? { root: opts.root } : {}),
    });
    log(`run ${run.id}: ${displayPath(file)} (${executor})`);
  }
  // Runs the cells open land in the same home as the notebook run.
  // CLINILORA_PARENTS (src/tracker/lineage.ts) links every run a cell opens to this notebook run.
  const parents = [process.env.CLINILORA_PARENTS, run !== null ? `notebook:${run.id}` : undefined].filter((p) => p !== undefined && p.trim() !== '').join(',');
  const env: Record<string, string> = {
    [NOTEBOOK_ENV.notebook]: file,
    ...(run !== null ? { [NOTEBOOK_ENV.run]: run.id } : {}),
    ...(parents !== '' ? { CLINILORA_PARENTS: parents } : {}),
    ...(opts.root !== undefined ? { CLINILORA_HOME: resolve(opts.root) } : {}),
  };

  let executed: Notebook = nb;
  let failure: CellFailure | null;
  try {
    if (executor === 'jupyter') {
      const r = await executeWithJupyter(nb, { python: python!, path: file, sourceIndex: injected.sourceIndex, env, ...(opts.timeoutS !== undefined ? { timeoutS: opts.timeoutS } : {}) });
      executed = r.notebook;
      failure = r.failure;
    } else {
      failure = await executeInProcess(nb, { path: file, sourceIndex: injected.sourceIndex, env, onCell: (i, n) => log(`cell ${i + 1}/${n}`) });
      normalizeOutputs(nb);
    }
  } catch (e) {
    run?.finish('failed', { error: e });
    throw e;
  }

  const result: NotebookRunResult = {
    notebook: displayPath(file),
    status: failure === null ? 'ok' : 'error',
    executor,
    runId: run?.id ?? null,
    executedPath: null,
    outPath: null,
    failure:
      failure === null
        ? null
        : { cell: failure.cell >= 0 ? (injected.sourceIndex[failure.cell] ?? null) : null, executedCell: failure.cell, ename: failure.ename, evalue: failure.evalue },
    injectedCell: injected.injectedIndex,
    ms: 0,
  };
  if (opts.out !== undefined) {
    result.outPath = resolveOut(opts.out, file);
    mkdirSync(dirname(result.outPath), { recursive: true });
    writeNotebook(result.outPath, executed);
  }
  if (run !== null) {
    result.executedPath = join(run.dir, basename(file));
    writeNotebook(result.executedPath, executed);
    await run.addArtifact(result.executedPath, { kind: 'notebook' });
    const codeCells = executed.cells.filter((c) => c.cell_type === 'code' && cellSource(c).trim() !== '').length;
    const ran = executed.cells.filter((c) => c.cell_type === 'code' && typeof c.execution_count === 'number').length;
    const metrics = { code_cells: codeCells, executed_cells: ran, ms: Date.now() - t0 };
    if (failure === null) run.finish('completed', { metrics });
    else run.finish('failed', { metrics, error: new Error(describeFailure(result)) });
  } else {
    result.executedPath = result.outPath;
  }
  result.ms = Date.now() - t0;
  return result;
}
