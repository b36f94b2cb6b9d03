/**
 * Executes a notebook in this process with tslab's executor (through our cell engine), when Jupyter
 * is not installed. Outputs are collected as nbformat outputs, display updates included, and
 * execution stops at the first failing cell, like nbclient.
 */
import { dirname, resolve } from 'node:path';
import type { CellSink, DisplayMessage } from './display-channel.ts';
import { createCellEngine } from './engine.ts';
import { cellSource, toLines, type Notebook, type NotebookOutput } from './nbformat.ts';
import { NOTEBOOK_ENV } from './origin.ts';

export interface CellFailure {
  /** Index in the executed notebook. */
  cell: number;
  ename: string;
  evalue: string;
}

export interface ExecuteOptions {
  /** The notebook's path (cells run in its directory, origins name it). */
  path: string;
  /** Each cell's index in the notebook as given (null: the injected parameters cell). */
  sourceIndex?: readonly (number | null)[];
  /** Environment set while the cells run (e.g. CLINILORA_NOTEBOOK_RUN). */
  env?: Record<string, string>;
  onCell?: (index: number, total: number) => void;
}

type DataOutput = Extract<NotebookOutput, { data: Record<string, unknown> }>;

/** Mutates `nb`: fills outputs and execution counts. Returns the failure, or null. */
export async function executeInProcess(nb: Notebook, opts: ExecuteOptions): Promise<CellFailure | null> {
  const path = resolve(opts.path);
  const cwd = dirname(path);
  const savedEnv = new Map<string, string | undefined>();
  const env = { [NOTEBOOK_ENV.notebook]: path, ...(opts.env ?? {}) };
  for (const [k, v] of Object.entries(env)) {
    savedEnv.set(k, process.env[k]);
    process.env[k] = v;
  }
  const before = process.cwd();
  const engine = await createCellEngine({ cwd });
  // Cells see the notebook's directory as the current one, as under a Jupyter kernel.
  process.chdir(cwd);
  try {
    for (const c of nb.cells) {
      if (c.cell_type !== 'code') continue;
      c.outputs = [];
      c.execution_count = null;
    }
    // display_id → outputs showing it (update_display_data replaces them all).
    const byDisplayId = new Map<string, DataOutput[]>();
    let count = 0;
    const total = nb.cells.length;
    for (let i = 0; i < total; i++) {
      const cell = nb.cells[i]!;
      const code = cellSource(cell);
      if (cell.cell_type !== 'code' || code.trim() === '') continue;
      opts.onCell?.(i, total);
      const outputs: NotebookOutput[] = [];
      cell.outputs = outputs;
      cell.execution_count = ++count;
      let clearPending = false;
      const beforeOutput = (): void => {
        if (clearPending) {
          outputs.length = 0;
          clearPending = false;
        }
      };
      const sink: CellSink = {
        stream(name, text) {
          beforeOutput();
          const last = outputs[outputs.length - 1];
          if (last !== undefined && last.output_type === 'stream' && last.name === name) last.text += text;
          else outputs.push({ output_type: 'stream', name, text });
        },
        display(msg: DisplayMessage, update: boolean) {
          const id = msg.transient?.display_id;
          if (update) {
            for (const o of (id !== undefined ? byDisplayId.get(id) : undefined) ?? []) {
              o.data = { ...msg.data };
              o.metadata = { ...msg.metadata };
            }
            return;
          }
          beforeOutput();
          const out: DataOutput = { output_type: 'display_data', data: { ...msg.data }, metadata: { ...msg.metadata } };
          outputs.push(out);
          if (id !== undefined) byDisplayId.set(id, [...(byDisplayId.get(id) ?? []), out]);
        },
        clearOutput(wait) {
          if (wait) clearPending = true;
          else outputs.length = 0;
        },
      };
      const src = opts.sourceIndex?.[i];
      const outcome = await engine.execute(code, sink, { notebook: path, cellIndex: src === undefined ? i : src, cellId: cell.id ?? null, executionCount: count });
      beforeOutput();
      if (outcome.status === 'error') {
        outputs.push({ output_type: 'error', ...outcome.error });
        return { cell: i, ename: outcome.error.ename, evalue: outcome.error.evalue };
      }
      if (outcome.result !== null) outputs.push({ output_type: 'execute_result', data: { ...outcome.result }, metadata: {}, execution_count: count });
    }
    return null;
  } finally {
    process.chdir(before);
    engine.close();
    for (const [k, v] of savedEnv) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Output text fields as nbformat line lists (what Jupyter writes), for stable saved files. */
export function normalizeOutputs(nb: Notebook): void {
  for (const c of nb.cells) {
    for (const o of c.outputs ?? []) {
      if (o.output_type === 'stream') (o as { text: string | string[] }).text = toLines(o.text);
      if (o.output_type === 'display_data' || o.output_type === 'execute_result') {
        for (const [k, v] of Object.entries(o.data)) if (typeof v === 'string' && (k.startsWith('text/') || k === 'image/svg+xml')) o.data[k] = toLines(v);
      }
    }
  }
}
