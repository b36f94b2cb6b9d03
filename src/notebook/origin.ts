/**
 * Where a run started from: the notebook and cell being executed. The kernel and the notebook runner
 * set the current cell before each cell runs; a process started for one notebook (e.g. by
 * `clinilora notebooks run`) also carries it in the environment, so anything in that process can read
 * it with `notebookOrigin()` — the tracker records it on the runs a cell opens.
 */

import type { RunOrigin } from '../tracker/schema.ts';

/** Environment variables that name the notebook of this process. */
export const NOTEBOOK_ENV = {
  /** The notebook's path (absolute). */
  notebook: 'CLINILORA_NOTEBOOK',
  /** The cell's index (0-based, in the notebook's `cells` array) when a single cell runs. */
  cell: 'CLINILORA_NOTEBOOK_CELL',
  /** The `notebook` run (`clinilora notebooks run`) executing it: the parent of runs its cells open. */
  run: 'CLINILORA_NOTEBOOK_RUN',
} as const;

/** What the runner knows about the cell it is executing. */
export interface CellContext {
  notebook: string | null;
  /** 0-based index in the notebook's `cells` (markdown cells included), as saved on disk. */
  cellIndex: number | null;
  /** nbformat 4.5 cell id, when the front end sent it. */
  cellId: string | null;
  executionCount: number | null;
}

/**
 * The run record's `origin` field (src/tracker/schema.ts owns its shape). An interface, not an alias:
 * tslab emits declarations per cell, and a value typed by an alias resolves to the schema module,
 * which a cell cannot name ("cannot be named without a reference to …/tracker/schema", TS2742).
 */
export interface NotebookOrigin extends RunOrigin {}

const CELL = Symbol.for('clinilora.notebook.cell');
type Global = typeof globalThis & { [CELL]?: CellContext | null };

export function setCurrentCell(cell: CellContext | null): void {
  (globalThis as Global)[CELL] = cell;
}

export function currentCell(): CellContext | null {
  return (globalThis as Global)[CELL] ?? null;
}

const nonEmpty = (s: string | undefined): string | null => (s !== undefined && s !== '' ? s : null);

/**
 * The notebook and cell this code runs under, or null outside a notebook. The running cell (set by
 * the kernel or runner) wins over the environment; `JPY_SESSION_NAME` (set by Jupyter Server for its
 * kernels) names the notebook when nothing else does.
 */
export function notebookOrigin(env: NodeJS.ProcessEnv = process.env): NotebookOrigin | null {
  const cell = currentCell();
  const notebook = cell?.notebook ?? nonEmpty(env[NOTEBOOK_ENV.notebook]) ?? nonEmpty(env.JPY_SESSION_NAME);
  if (notebook === null) return null;
  const envCell = nonEmpty(env[NOTEBOOK_ENV.cell]);
  const index = cell?.cellIndex ?? (envCell !== null && /^\d+$/.test(envCell) ? Number(envCell) : null);
  return {
    kind: 'notebook',
    notebook,
    cell: index,
    cellId: cell?.cellId ?? null,
    executionCount: cell?.executionCount ?? null,
    run: nonEmpty(env[NOTEBOOK_ENV.run]),
  };
}
